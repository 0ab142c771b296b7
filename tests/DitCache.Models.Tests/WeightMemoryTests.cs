using System;
using System.Linq;
using DitCache.Caching;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Models.Tests;

/// <summary>
/// Exclusive weights (the CLI's) are packed in place: the managed GEMM keeps no second copy of a DiT whose Linear
/// sizes are multiples of the panel width (as DiT-XL/2's are), and the model computes bit for bit what it computes
/// with a packed copy (which <see cref="DitParityTests"/> checks against PyTorch).
/// </summary>
public sealed class WeightMemoryTests
{
    // hidden 64, MLP 256, qkv 192, adaLN 384, final 2·2·8 = 32: every n a multiple of 8, 16 and 32 (every ISA's Nr).
    private static readonly DitConfig s_config = new(Depth: 2, Hidden: 64, Heads: 4, Patch: 2, InputSize: 8, InChannels: 4,
        LearnSigma: true, NumClasses: 10);

    [Theory]
    [InlineData(GemmIsa.Auto, GemmPrecision.Float32)]
    [InlineData(GemmIsa.Scalar, GemmPrecision.Float32)]
    [InlineData(GemmIsa.Auto, GemmPrecision.BFloat16)]
    public void Exclusive_weights_cost_no_packed_copy_where_a_shared_model_keeps_one(GemmIsa isa, GemmPrecision precision)
    {
        TensorFile file = DitWeights.RandomFile(s_config, seed: 3);
        long weightFloats = file.Entries.Values.Sum(e => (long)Tensor.ElementCount(e.Shape));

        var shared = new ManagedGemm(1, isa, precision);
        _ = new DitModel(DitWeights.FromFile(file), shared, 1);
        var exclusive = new ManagedGemm(1, isa, precision);
        _ = new DitModel(DitWeights.FromFile(file, exclusive: true), exclusive, 1);

        // The bound the issue sets for the whole run is 1.25x; the weights' own share is held to 1.1x here: every float
        // a GEMM keeps beside the weights counts against it. The shared model's copies (half as many floats for BF16,
        // and the Linear weights are most but not all of the file) show the count sees them.
        Assert.True(shared.PreparedCopyFloats >= weightFloats / 4, $"shared copies {shared.PreparedCopyFloats} of {weightFloats}");
        Assert.True(exclusive.PreparedCopyFloats <= weightFloats / 10, $"exclusive copies {exclusive.PreparedCopyFloats} of {weightFloats}");
        Assert.Equal(0, exclusive.PreparedCopyFloats);
    }

    [Theory]
    [InlineData(GemmIsa.Auto, GemmPrecision.Float32, 2)]
    [InlineData(GemmIsa.Scalar, GemmPrecision.Float32, 1)]
    [InlineData(GemmIsa.Auto, GemmPrecision.BFloat16, 2)]
    public void Exclusive_weights_give_bit_for_bit_the_forward_of_shared_ones(GemmIsa isa, GemmPrecision precision, int threads)
    {
        TensorFile file = DitWeights.RandomFile(s_config, seed: 5, std: 0.1f);
        var shared = new DitModel(DitWeights.FromFile(file), new ManagedGemm(threads, isa, precision), threads);
        var exclusive = new DitModel(DitWeights.FromFile(file, exclusive: true), new ManagedGemm(threads, isa, precision), threads);

        // 2 rows: the conditioning Linears take the few-rows kernel on the row-major weights; 70 distinct rows (more
        // than the model's 64 few rows): the GEMM on the unprepared conditioning weights.
        foreach (int batch in new[] { 2, 70 })
        {
            int image = s_config.InChannels * s_config.InputSize * s_config.InputSize;
            float[] x = new float[batch * image];
            var random = new Random(batch);
            for (int i = 0; i < x.Length; i++)
            {
                x[i] = (float)((random.NextDouble() * 2) - 1);
            }

            float[] t = Enumerable.Range(0, batch).Select(i => (float)(i * 997 % 1000)).ToArray();
            int[] y = Enumerable.Range(0, batch).Select(i => i % (s_config.NumClasses + 1)).ToArray();
            float[] expected = new float[batch * s_config.OutChannels * s_config.InputSize * s_config.InputSize];
            float[] actual = new float[expected.Length];
            shared.Forward(x, t, y, shared.CreateState(batch), NoCache.Instance, expected);
            exclusive.Forward(x, t, y, exclusive.CreateState(batch), NoCache.Instance, actual);
            Assert.All(expected, v => Assert.True(float.IsFinite(v)));
            Assert.Equal(expected, actual);
        }
    }

    [Fact]
    public void Exclusive_weights_refuse_a_second_model_and_shared_ones_allow_it()
    {
        TensorFile file = DitWeights.RandomFile(s_config);
        DitWeights weights = DitWeights.FromFile(file, exclusive: true);
        Assert.True(weights.Exclusive);
        _ = new DitModel(weights, new ManagedGemm(1), 1);
        var e = Assert.Throws<InvalidOperationException>(() => new DitModel(weights, new ManagedGemm(1), 1));
        Assert.Contains("read the file again", e.Message, StringComparison.Ordinal);

        DitWeights plain = DitWeights.FromFile(file);
        Assert.False(plain.Exclusive);
        _ = new DitModel(plain, new ManagedGemm(1), 1);
        _ = new DitModel(plain, new ManagedGemm(1), 1);
    }
}
