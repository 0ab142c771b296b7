using System;
using System.Collections.Generic;
using System.Linq;
using DitCache.Caching;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Models.Tests;

/// <summary>
/// <c>--weights bf16|f16</c>: a model with 16-bit Linear weights computes what the float32 model computes with those
/// weights rounded (by this file's own rounding) and nothing else rounded; it holds the weights in half the bytes.
/// </summary>
public sealed class HalfWeightModelTests
{
    // Every Linear n a multiple of 32, so every weight is packed over its own compact array.
    private static readonly DitConfig s_config = new(Depth: 2, Hidden: 64, Heads: 4, Patch: 2, InputSize: 8, InChannels: 4,
        LearnSigma: true, NumClasses: 10);

    [Theory]
    [InlineData(WeightPrecision.BFloat16, GemmIsa.Auto, 2)]
    [InlineData(WeightPrecision.Float16, GemmIsa.Auto, 1)]
    [InlineData(WeightPrecision.Float16, GemmIsa.Scalar, 1)]
    [InlineData(WeightPrecision.BFloat16, GemmIsa.Avx2, 2)]
    public void Sixteen_bit_weights_give_the_forward_of_the_rounded_weights_in_float32(WeightPrecision precision, GemmIsa isa, int threads)
    {
        if (!ManagedGemm.IsSupported(isa))
        {
            return;
        }

        TensorFile file = DitWeights.RandomFile(s_config, seed: 7, std: 0.1f);
        var rounded = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach ((string key, Tensor t) in file.Tensors.Select(kv => (kv.Key, kv.Value)))
        {
            bool linear = key.EndsWith(".weight", StringComparison.Ordinal) && t.Shape.Length == 2 && !key.StartsWith("y_embedder", StringComparison.Ordinal);
            rounded[key] = linear ? new Tensor(Array.ConvertAll(t.Data, x => Round(x, precision)), t.Shape) : t;
        }

        var reference = new DitModel(DitWeights.FromFile(file.WithTensors(rounded)), new ManagedGemm(threads, isa), threads);
        var gemm = new ManagedGemm(threads, isa);
        DitWeights half = DitWeights.FromFile(file, exclusive: true, precision: precision);
        Assert.Equal(precision, half.Precision);
        var model = new DitModel(half, gemm, threads);
        Assert.Equal(0, gemm.PreparedCopyFloats);
        Assert.Equal(HalfWeights.CompactLength(6L * 64 * 64), half.Blocks[0].AdaLn.W.Length);

        // 2 rows (the float32 model's few-rows conditioning kernel; the 16-bit one goes through the GEMM) and 70.
        foreach (int batch in new[] { 2, 70 })
        {
            int image = s_config.InChannels * s_config.InputSize * s_config.InputSize;
            var random = new Random(batch);
            float[] x = Enumerable.Range(0, batch * image).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();
            float[] t = Enumerable.Range(0, batch).Select(i => (float)(i * 997 % 1000)).ToArray();
            int[] y = Enumerable.Range(0, batch).Select(i => i % (s_config.NumClasses + 1)).ToArray();
            float[] expected = new float[batch * s_config.OutChannels * image / s_config.InChannels];
            float[] actual = new float[expected.Length];
            reference.Forward(x, t, y, reference.CreateState(batch), NoCache.Instance, expected);
            model.Forward(x, t, y, model.CreateState(batch), NoCache.Instance, actual);
            double scale = expected.Max(v => Math.Abs(v));
            for (int i = 0; i < expected.Length; i++)
            {
                Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 * scale, $"batch {batch} [{i}]: {actual[i]:G9} vs {expected[i]:G9}");
            }
        }
    }

    [Fact]
    public void Sixteen_bit_weights_differ_from_float32_by_the_rounding_and_need_exclusive_and_a_widening_gemm()
    {
        TensorFile file = DitWeights.RandomFile(s_config, seed: 9, std: 0.1f);
        var full = new DitModel(DitWeights.FromFile(file), new ManagedGemm(1), 1);
        var half = new DitModel(DitWeights.FromFile(file, exclusive: true, precision: WeightPrecision.BFloat16), new ManagedGemm(1), 1);
        int image = s_config.InChannels * s_config.InputSize * s_config.InputSize;
        float[] x = Enumerable.Range(0, image).Select(i => MathF.Sin(i)).ToArray();
        float[] a = new float[2 * image], b = new float[2 * image];
        full.Forward(x, [500f], [3], full.CreateState(1), NoCache.Instance, a);
        half.Forward(x, [500f], [3], half.CreateState(1), NoCache.Instance, b);
        double diff = a.Zip(b, (p, q) => Math.Abs(p - q)).Max();
        Assert.True(diff > 0 && diff < 0.05 * a.Max(v => Math.Abs(v)), $"max |f32 - bf16| = {diff}");

        Assert.Throws<ArgumentException>(() => DitWeights.FromFile(file, precision: WeightPrecision.Float16));
        var e = Assert.Throws<DitCacheException>(() => new DitModel(DitWeights.FromFile(file, exclusive: true, precision: WeightPrecision.Float16),
            new ManagedGemm(1, GemmIsa.Auto, GemmPrecision.BFloat16), 1));
        Assert.Contains("--gemm managed", e.Message, StringComparison.Ordinal);
    }

    // As HalfWeightTests: bfloat16 from the binary exponent in double arithmetic, float16 by .NET's Half.
    private static float Round(float x, WeightPrecision precision)
    {
        if (precision == WeightPrecision.Float16)
        {
            return (float)(Half)x;
        }

        if (x == 0)
        {
            return x;
        }

        double ulp = Math.ScaleB(1.0, Math.Max(Math.ILogB(x), -126) - 7);
        return (float)(Math.Round(x / ulp, MidpointRounding.ToEven) * ulp);
    }
}
