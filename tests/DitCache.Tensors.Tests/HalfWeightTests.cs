using System;
using System.Collections.Generic;
using DitCache.Tests;
using Xunit;

namespace DitCache.Tensors.Tests;

/// <summary>
/// 16-bit weights (<c>--weights bf16|f16</c>): stored compact, packed in place, widened to float32 in the micro-kernel.
/// Oracle: <see cref="Reference.MatMul"/> on the weights rounded by this file's own rounding (bfloat16 from the
/// value's binary exponent in double arithmetic; float16 by .NET's <see cref="Half"/>), and A untouched.
/// </summary>
public class HalfWeightTests
{
    public static IEnumerable<object[]> Cases()
    {
        foreach (object[] isa in GemmTests.Isas())
        {
            foreach (WeightPrecision p in new[] { WeightPrecision.BFloat16, WeightPrecision.Float16 })
            {
                foreach (int threads in new[] { 1, 2 })
                {
                    yield return [isa[0], p, threads];
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Half_weights_multiply_as_the_rounded_weights_in_float32(GemmIsa isa, WeightPrecision precision, int threads)
    {
        // n = 64, 96: multiples of every panel width, packed over the compact array (no copy); n = 33, 5: ragged, a
        // packed copy. k crosses the float32 k block (1152) and the packing block (512), and is odd.
        foreach ((int m, int n, int k, bool inPlace) in new[] { (7, 64, 1159, true), (130, 96, 64, true), (9, 33, 9, false), (64, 5, 385, false), (1, 32, 1, true) })
        {
            float[] a = TestUtil.Random(m * k, m + k);
            float[] w = TestUtil.Random(n * k, n + k, scale: 3f);
            float[] c0 = TestUtil.Random(m * n, m + n);
            float[] compact = HalfWeights.Compact(w, precision, "w");
            Assert.Equal(((long)n * k) + 1 >> 1, compact.Length);
            var gemm = new ManagedGemm(threads, isa);
            gemm.PrepareInPlace(compact, n, k, precision);
            Assert.Equal(inPlace, gemm.PreparedCopyFloats == 0);
            Assert.Equal(compact.Length, gemm.WeightLength(compact, n, k));
            Assert.Equal((long)n * k, gemm.WeightLength(w, n, k));

            float[] rounded = Array.ConvertAll(w, x => Round(x, precision));
            foreach (bool accumulate in new[] { false, true })
            {
                float[] actual = (float[])c0.Clone();
                gemm.Multiply(m, n, k, a, k, compact, k, transB: true, actual, n, accumulate);
                float[] expected = (float[])c0.Clone();
                Reference.MatMul(m, n, k, a, k, rounded, k, transB: true, expected, n, accumulate);
                AssertWithinSummationError(expected, actual, a, rounded, accumulate ? c0 : null, m, n, k);
            }

            // Through the Linear kernel, which asks the GEMM how long the weight must be.
            float[] bias = TestUtil.Random(n, 5);
            float[] y = new float[m * n];
            Kernels.Linear(gemm, a, compact, bias, y, m, k, n);
            float[] yRef = new float[m * n];
            for (int i = 0; i < m; i++)
            {
                bias.CopyTo(yRef, i * n);
            }

            Reference.MatMul(m, n, k, a, k, rounded, k, transB: true, yRef, n, accumulate: true);
            AssertWithinSummationError(yRef, y, a, rounded, yRef, m, n, k);
        }
    }

    [Theory]
    [MemberData(nameof(GemmTests.Isas), MemberType = typeof(GemmTests))]
    public void Float16_widening_is_exact_for_signs_zeros_subnormals_and_the_extremes(GemmIsa isa)
    {
        // A = identity, so C = Wᵀ: every widened weight comes out as it is, bit for bit, through every lane of a panel
        // (n = 64 covers both halves of the 32-bit lanes of every panel width). Negative values catch a widening that
        // loses or flips the sign; subnormal halves (below 2^-14) one that forgets the 2^112 scale.
        float[] specials = [0f, -0f, 1f, -1f, 65504f, -65504f, 6.1035156e-5f, -6.1035156e-5f, 5.9604645e-8f, -5.9604645e-8f,
            1e-6f, -3e-7f, 2.5e-8f, 1.0009765625f, -0.1f, 0.333333f, 1000.5f, -2.9e-5f];
        const int n = 64, k = 16;
        float[] w = new float[n * k];
        for (int i = 0; i < w.Length; i++)
        {
            w[i] = specials[(i * 7) % specials.Length] * (i % 5 == 4 ? 0.5f : 1f);
        }

        float[] identity = new float[k * k];
        for (int i = 0; i < k; i++)
        {
            identity[(i * k) + i] = 1f;
        }

        foreach (WeightPrecision precision in new[] { WeightPrecision.Float16, WeightPrecision.BFloat16 })
        {
            var gemm = new ManagedGemm(1, isa);
            float[] compact = HalfWeights.Compact(w, precision, "w");
            gemm.PrepareInPlace(compact, n, k, precision);
            float[] c = new float[k * n];
            gemm.Multiply(k, n, k, identity, k, compact, k, transB: true, c, n);
            for (int j = 0; j < n; j++)
            {
                for (int p = 0; p < k; p++)
                {
                    float expected = Round(w[(j * k) + p], precision);
                    Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(c[(p * n) + j]) || (expected == 0 && c[(p * n) + j] == 0),
                        $"{precision} weight [{j}, {p}] = {w[(j * k) + p]:G9}: widened {c[(p * n) + j]:G9}, expected {expected:G9}");
                }
            }
        }
    }

    [Fact]
    public void Bf16_weights_on_the_bf16_gemm_round_activations_too()
    {
        const int m = 9, n = 64, k = 70;
        float[] a = TestUtil.Random(m * k, 3);
        float[] w = TestUtil.Random(n * k, 4);
        var gemm = new ManagedGemm(1, GemmIsa.Auto, GemmPrecision.BFloat16);
        float[] compact = HalfWeights.Compact(w, WeightPrecision.BFloat16, "w");
        gemm.PrepareInPlace(compact, n, k, WeightPrecision.BFloat16);
        float[] actual = new float[m * n];
        gemm.Multiply(m, n, k, a, k, compact, k, transB: true, actual, n);
        float[] ra = Array.ConvertAll(a, x => Round(x, WeightPrecision.BFloat16));
        float[] rw = Array.ConvertAll(w, x => Round(x, WeightPrecision.BFloat16));
        float[] expected = new float[m * n];
        Reference.MatMul(m, n, k, ra, k, rw, k, transB: true, expected, n, accumulate: false);
        AssertWithinSummationError(expected, actual, ra, rw, null, m, n, k);
        Assert.Throws<NotSupportedException>(() => gemm.PrepareInPlace(HalfWeights.Compact(w, WeightPrecision.Float16, "w"), n, k, WeightPrecision.Float16));
        Assert.False(gemm.Supports(WeightPrecision.Float16));
    }

    [Fact]
    public void Values_a_format_cannot_hold_are_refused_with_the_tensor_name()
    {
        var e = Assert.Throws<DitCacheException>(() => HalfWeights.Compact([1f, 70000f], WeightPrecision.Float16, "blocks.0.mlp.fc1.weight"));
        Assert.Contains("blocks.0.mlp.fc1.weight", e.Message);
        Assert.Contains("65504", e.Message);
        Assert.Contains("index 1", e.Message);
        Assert.Contains("bf16", e.Message);
        Assert.Equal(65504f, HalfWeights.Widen(HalfWeights.Compact([65519f], WeightPrecision.Float16, "w"), 0, WeightPrecision.Float16));   // rounds down
        Assert.Throws<DitCacheException>(() => HalfWeights.Compact([65520f], WeightPrecision.Float16, "w"));                               // rounds to inf
        Assert.Throws<DitCacheException>(() => HalfWeights.Compact([float.NaN], WeightPrecision.BFloat16, "w"));
        Assert.Throws<DitCacheException>(() => HalfWeights.Compact([float.NegativeInfinity], WeightPrecision.Float16, "w"));
        Assert.Throws<DitCacheException>(() => HalfWeights.Compact([float.MaxValue], WeightPrecision.BFloat16, "w"));
        Assert.Throws<ArgumentException>(() => HalfWeights.Compact([1f], WeightPrecision.Float32, "w"));
        float[] odd = HalfWeights.Compact([1f, 2f, 3f], WeightPrecision.BFloat16, "w");
        Assert.Equal(2, odd.Length);
        Assert.Equal(3f, HalfWeights.Widen(odd, 2, WeightPrecision.BFloat16));
    }

    [Fact]
    public void A_backend_without_16_bit_weights_refuses_them_and_names_parse()
    {
        IGemm plain = new GemmTests.NoPrepareGemm();
        Assert.False(plain.Supports(WeightPrecision.BFloat16));
        Assert.Throws<NotSupportedException>(() => plain.PrepareInPlace(new float[2], 2, 2, WeightPrecision.BFloat16));
        Assert.Equal(WeightPrecision.BFloat16, WeightPrecisions.Parse("BF16"));
        Assert.Equal(WeightPrecision.Float16, WeightPrecisions.Parse("fp16"));
        Assert.Equal(WeightPrecision.Float32, WeightPrecisions.Parse("f32"));
        var e = Assert.Throws<DitCacheException>(() => WeightPrecisions.Parse("int8"));
        Assert.Contains("f32, bf16, f16", e.Message);
        Assert.Equal("bf16", WeightPrecision.BFloat16.Name());

        // A compact array is too short for a float32 weight of its shape: used unprepared, it is refused, not read past.
        var gemm = new ManagedGemm();
        float[] compact = HalfWeights.Compact(new float[64], WeightPrecision.BFloat16, "w");
        Assert.Throws<ArgumentException>(() => gemm.Multiply(1, 8, 8, new float[8], 8, compact, 8, transB: true, new float[8], 8));
        Assert.Throws<ArgumentException>(() => gemm.PrepareInPlace(new float[31], 8, 8, WeightPrecision.Float16));
    }

    // bfloat16: 8 significant bits, nearest, ties to even, computed from the binary exponent in double arithmetic
    // (independent of the bit-pattern rounding in BFloat16); float16: .NET's Half conversion.
    private static float Round(float x, WeightPrecision precision)
    {
        if (precision == WeightPrecision.Float16)
        {
            return (float)(Half)x;
        }

        if (x == 0 || !float.IsFinite(x))
        {
            return x;
        }

        int e = Math.ILogB(x);
        double ulp = Math.ScaleB(1.0, Math.Max(e, -126) - 7);
        return (float)(Math.Round(x / ulp, MidpointRounding.ToEven) * ulp);
    }

    private static void AssertWithinSummationError(float[] expected, float[] actual, float[] a, float[] w, float[]? c0, int m, int n, int k)
    {
        double eps = Math.ScaleB(1.0, -24);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double mag = c0 is null ? 0 : Math.Abs(c0[(i * n) + j]);
                for (int p = 0; p < k; p++)
                {
                    mag += Math.Abs((double)a[(i * k) + p] * w[(j * k) + p]);
                }

                double bound = ((k + 2) * eps * mag) + 1e-30;
                Assert.True(Math.Abs(expected[(i * n) + j] - actual[(i * n) + j]) <= bound,
                    $"C[{i}, {j}] = {actual[(i * n) + j]:G9}, expected {expected[(i * n) + j]:G9} (bound {bound:G3})");
            }
        }
    }
}
