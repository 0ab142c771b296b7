using System;
using DitCache.Caching;
using DitCache.Tensors;
using Xunit;

namespace DitCache.Models.Tests;

/// <summary>
/// <see cref="DitModel.PrepareConditioning"/>: a forward that takes its conditioning from the prepared table matches
/// the PyTorch golden output as the per-step path does (the golden file is independent of both), and one whose (t, y)
/// is missing from the table computes it as usual, bit for bit.
/// </summary>
public class PreparedConditioningTests
{
    private static DitModel NewModel() => new(DitWeights.FromFile(Golden.Weights), new ManagedGemm(1), 1);

    private static float[] Forward(DitModel model, DitRunState s)
    {
        var output = new float[Golden.Get("out").Length];
        model.Forward(Golden.Get("x").Data, Golden.Get("t").Data, Golden.Labels("y"), s, NoCache.Instance, output);
        return output;
    }

    private static double RelativeL2(float[] reference, float[] actual)
    {
        double num = 0, den = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            double e = (double)actual[i] - reference[i];
            num += e * e;
            den += (double)reference[i] * reference[i];
        }

        return Math.Sqrt(num / den);
    }

    [Fact]
    public void APreparedForwardMatchesTheGoldenOutput()
    {
        DitModel model = NewModel();
        float[] golden = Golden.Get("out").Data;
        DitRunState plain = model.CreateState(2);
        double plainError = RelativeL2(golden, Forward(model, plain));

        DitRunState s = model.CreateState(2);
        float[] t = Golden.Get("t").Data;                                        // [999, 500]
        Assert.True(model.PrepareConditioning([100f, t[0], 250f, t[1]], [0, 3, 7, 10], s));
        double preparedError = RelativeL2(golden, Forward(model, s));
        Assert.True(preparedError < 2e-6, $"prepared forward: relative L2 {preparedError:E2} to PyTorch (per-step path {plainError:E2})");
    }

    [Fact]
    public void APairOutsideTheTableIsComputedAsUsual()
    {
        DitModel model = NewModel();
        float[] expected = Forward(model, model.CreateState(2));
        DitRunState s = model.CreateState(2);
        Assert.True(model.PrepareConditioning([999f], [3, 7], s));               // t = 500 is missing
        Assert.Equal(expected, Forward(model, s));
    }

    [Fact]
    public void ATableOverTheLimitIsNotPrepared()
    {
        DitModel model = NewModel();
        DitRunState s = model.CreateState(2);
        Assert.False(model.PrepareConditioning([999f, 500f], [3, 7], s, maxBytes: 1000));
        Assert.Equal(Forward(model, model.CreateState(2)), Forward(model, s));
        Assert.Throws<ArgumentException>(() => model.PrepareConditioning([999f], [11], s));
    }
}
