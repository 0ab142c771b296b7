using System;
using System.Collections.Generic;
using Xunit;

namespace DitCache.Tensors.Tests;

/// <summary>Every kernel in Kernels/*.cs against its naive double-precision twin in <c>Reference</c>.</summary>
public class KernelTests
{
    private const double Eps = 1.1920928955078125e-7; // float32 machine epsilon, 2^-23

    private static readonly int[] s_ragged = [1, 7, 63, 64, 65, 1159];

    public static IEnumerable<object[]> ElementwiseLengths()
    {
        for (int n = 0; n <= 70; n++)
        {
            yield return [n];
        }

        yield return [1159];
    }

    [Theory]
    [MemberData(nameof(ElementwiseLengths))]
    public void GeluTanh_matches_reference(int n)
    {
        float[] x = TestUtil.Random(n, n, 8f);
        float[] expected = new float[n];
        Reference.GeluTanh(x, expected);
        float[] y = TestUtil.Guarded(n);
        Kernels.GeluTanh(x, y);
        // x·sigmoid(2u) with a vector exp of a few ulp: relative error a few ε; absolute floor for the deep negative tail.
        TestUtil.AssertClose(expected, y, n, 16 * Eps, 1e-7, "gelu");
        TestUtil.AssertCanaries(y, n);
        Kernels.GeluTanh(x, x);
        TestUtil.AssertEqual(y, x, n, "gelu in place");
    }

    [Theory]
    [MemberData(nameof(ElementwiseLengths))]
    public void IndexOfNonFinite_matches_reference(int n)
    {
        // Finite everywhere, then one bad value at every position (NaN with payloads, ±∞), then two bad values (the
        // first wins), including the largest finite values that must pass.
        float[] x = TestUtil.Random(n, n + 200, 1e3f);
        if (n > 0)
        {
            x[n / 2] = float.MaxValue;
            x[n - 1] = -float.MaxValue;
        }

        Assert.Equal(-1, Reference.IndexOfNonFinite(x));
        Assert.Equal(-1, Kernels.IndexOfNonFinite(x));
        float[] bad = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, BitConverter.UInt32BitsToSingle(0xFFC0_1234u)];
        for (int i = 0; i < n; i++)
        {
            float keep = x[i];
            x[i] = bad[i % bad.Length];
            Assert.Equal(i, Reference.IndexOfNonFinite(x));
            Assert.Equal(i, Kernels.IndexOfNonFinite(x));
            if (i + 3 < n)
            {
                float later = x[i + 3];
                x[i + 3] = float.NaN;
                Assert.Equal(i, Kernels.IndexOfNonFinite(x));
                x[i + 3] = later;
            }

            x[i] = keep;
        }

        Assert.Equal(-1, Kernels.IndexOfNonFinite(x.AsSpan(0, 0)));
    }

    [Theory]
    [MemberData(nameof(ElementwiseLengths))]
    public void Silu_matches_reference(int n)
    {
        float[] x = TestUtil.Random(n, n + 100, 12f);
        float[] expected = new float[n];
        Reference.Silu(x, expected);
        float[] y = TestUtil.Guarded(n);
        Kernels.Silu(x, y);
        TestUtil.AssertClose(expected, y, n, 16 * Eps, 1e-7, "silu");
        TestUtil.AssertCanaries(y, n);
        Kernels.Silu(x, x);
        TestUtil.AssertEqual(y, x, n, "silu in place");
    }

    [Fact]
    public void Exp_matches_double_over_the_float_range()
    {
        // Dense over [-110, 95] (underflow to denormals and 0, the normal range, overflow to +inf), then special values;
        // lengths that leave Vector512, Vector256 and scalar tails.
        var values = new System.Collections.Generic.List<float>();
        for (double v = -110; v <= 95; v += 0.0137)
        {
            values.Add((float)v);
        }

        values.AddRange([0f, -0f, 1e-30f, -1e-30f, 88.72f, 88.73f, -87.33f, -103.9f, float.PositiveInfinity,
            float.NegativeInfinity, float.NaN, float.MaxValue, float.MinValue]);
        foreach (int n in new[] { values.Count, values.Count - 9, values.Count - 17 })
        {
            float[] x = values.GetRange(0, n).ToArray();
            float[] y = TestUtil.Guarded(n);
            UnaryApply.Run<ExpOperator>(x, y);
            for (int i = 0; i < n; i++)
            {
                double e = Math.Exp(x[i]);
                float expected = (float)e;
                if (float.IsNaN(x[i]) || float.IsInfinity(expected) || expected == 0f)
                {
                    Assert.True(expected.Equals(y[i]), $"exp({x[i]:R}) = {y[i]:R}, expected {expected:R}");
                }
                else
                {
                    // 2 ulp relative in the normal range; denormals keep an absolute error of an ulp of the smallest normal.
                    Assert.True(Math.Abs(y[i] - e) <= (2 * Eps * e) + 1.5e-45, $"exp({x[i]:R}) = {y[i]:R}, expected {e:R}");
                }
            }

            TestUtil.AssertCanaries(y, n);
        }
    }

    [Fact]
    public void Silu_and_gelu_saturate_like_torch()
    {
        float[] x = [-1000f, -90f, 0f, 90f, 1000f];
        float[] y = new float[5];
        Kernels.Silu(x, y);
        Assert.Equal([-0f, -0f, 0f, 90f, 1000f], y);
        Kernels.GeluTanh(x, y);
        Assert.Equal([-0f, -0f, 0f, 90f, 1000f], y);
    }

    [Fact]
    public void LayerNorm_matches_reference()
    {
        foreach (int rows in new[] { 1, 3 })
        {
            foreach (int dim in s_ragged)
            {
                // An offset mean checks the two-pass variance (E[x²] − E[x]² would cancel here).
                float[] x = TestUtil.Random(rows * dim, dim + rows, 3f);
                for (int i = 0; i < x.Length; i++)
                {
                    x[i] += 50f;
                }

                float[] expected = new float[rows * dim];
                Reference.LayerNorm(x, expected, rows, dim, 1e-6f);
                float[] y = TestUtil.Guarded(rows * dim);
                Kernels.LayerNorm(x, y, rows, dim);
                // Outputs are O(1); the float mean/variance carry ~dim·ε relative error amplified by |x|/std ≈ 30.
                TestUtil.AssertClose(expected, y, rows * dim, 1e-5, 30 * dim * Eps, $"layernorm {rows}x{dim}");
                TestUtil.AssertCanaries(y, rows * dim);
            }
        }
    }

    [Fact]
    public void AddBias_matches_reference_exactly()
    {
        foreach (int rows in new[] { 1, 7 })
        {
            foreach (int cols in s_ragged)
            {
                float[] x = TestUtil.Random(rows * cols, cols);
                float[] bias = TestUtil.Random(cols, cols + 1);
                float[] expected = (float[])x.Clone();
                Reference.AddBias(expected, bias, rows, cols);
                float[] y = TestUtil.Guarded(rows * cols);
                x.CopyTo(y, 0);
                Kernels.AddBias(y, bias, rows, cols);
                TestUtil.AssertEqual(expected, y, rows * cols, $"addbias {rows}x{cols}");
                TestUtil.AssertCanaries(y, rows * cols);
            }
        }
    }

    [Fact]
    public void Softmax_matches_reference()
    {
        foreach (int rows in new[] { 1, 5 })
        {
            foreach (int cols in new[] { 0, 1, 7, 63, 64, 65, 1159 })
            {
                float[] x = TestUtil.Random(rows * cols, cols + 7, 20f);
                float[] expected = (float[])x.Clone();
                Reference.Softmax(expected, rows, cols);
                float[] y = TestUtil.Guarded(rows * cols);
                x.CopyTo(y, 0);
                Kernels.Softmax(y, rows, cols);
                TestUtil.AssertClose(expected, y, rows * cols, 32 * Eps, 1e-9, $"softmax {rows}x{cols}");
                TestUtil.AssertCanaries(y, rows * cols);
            }
        }
    }

    [Fact]
    public void Softmax_is_stable_for_large_logits()
    {
        float[] x = [1000f, 1000f, -1000f];
        Kernels.Softmax(x, 1, 3);
        Assert.Equal([0.5f, 0.5f, 0f], x);
    }

    [Fact]
    public void Modulate_and_GatedResidualAdd_match_reference()
    {
        const int Batch = 2;
        foreach (int tokens in new[] { 1, 7, 65 })
        {
            foreach (int dim in s_ragged)
            {
                int modStride = (6 * dim) + 3;
                int count = Batch * tokens * dim;
                float[] x = TestUtil.Random(count, dim + tokens, 4f);
                float[] mod = TestUtil.Random(Batch * modStride, dim);
                float[] expected = new float[count];
                Reference.Modulate(x, expected, mod, modStride, 0, dim, Batch, tokens, dim);
                float[] y = TestUtil.Guarded(count);
                Kernels.Modulate(x, y, mod, modStride, 0, dim, Batch, tokens, dim);
                // x·(1 + s) + t in float with one FMA: two roundings of values ≤ |x|·2 + 1.
                TestUtil.AssertClose(expected, y, count, 2 * Eps, 20 * Eps, $"modulate {tokens}x{dim}");
                TestUtil.AssertCanaries(y, count);

                float[] gated = TestUtil.Guarded(count);
                x.CopyTo(gated, 0);
                float[] expectedGated = (float[])x.Clone();
                Reference.GatedResidualAdd(expectedGated, y, mod, modStride, 2 * dim, Batch, tokens, dim);
                Kernels.GatedResidualAdd(gated, y, mod, modStride, 2 * dim, Batch, tokens, dim);
                TestUtil.AssertClose(expectedGated, gated, count, Eps, 1e-30, $"gated {tokens}x{dim}");
                TestUtil.AssertCanaries(gated, count);
            }
        }
    }

    [Fact]
    public void Linear_matches_reference_with_and_without_bias()
    {
        var gemm = new ManagedGemm(2);
        foreach (int rows in new[] { 1, 7, 65 })
        {
            foreach ((int inF, int outF) in new[] { (1, 7), (7, 63), (64, 65), (65, 64), (1159, 7) })
            {
                float[] x = TestUtil.Random(rows * inF, rows + inF);
                float[] w = TestUtil.Random(outF * inF, outF + inF);
                float[] bias = TestUtil.Random(outF, outF);
                foreach (bool withBias in new[] { false, true })
                {
                    float[] b = withBias ? bias : [];
                    float[] expected = new float[rows * outF];
                    Reference.Linear(x, w, b, expected, rows, inF, outF);
                    float[] y = TestUtil.Guarded(rows * outF);
                    Kernels.Linear(gemm, x, w, b, y, rows, inF, outF);
                    // |x|,|w| ≤ 1: Σ|x·w| ≤ inF, so the k·ε·Σ|a·b| GEMM bound is at most (inF + 2)·ε·(inF + 1).
                    TestUtil.AssertClose(expected, y, rows * outF, 0, (inF + 2) * Eps * (inF + 1) / 2,
                        $"linear {rows}x{inF}->{outF} bias={withBias}");
                    TestUtil.AssertCanaries(y, rows * outF);
                }
            }
        }
    }

    [Fact]
    public void LinearFewRows_matches_reference_on_every_isa_with_and_without_bias()
    {
        // Ragged output features around every tile height (Mr 8/6/4), row counts around every tile width (Nr 32/16/8)
        // and past one row block, in features up to past a GEMM k block; one thread and three.
        foreach (GemmIsa isa in AttentionIsas())
        {
            foreach (int rows in new[] { 1, 7, 20, 33, 65 })
            {
                foreach ((int inF, int outF) in new[] { (1, 7), (7, 63), (128, 768), (65, 64), (300, 13) })
                {
                    float[] x = TestUtil.Random(rows * inF, rows + inF);
                    float[] w = TestUtil.Random(outF * inF, outF + inF);
                    float[] bias = TestUtil.Random(outF, outF);
                    foreach (bool withBias in new[] { false, true })
                    {
                        float[] b = withBias ? bias : [];
                        float[] expected = new float[rows * outF];
                        Reference.Linear(x, w, b, expected, rows, inF, outF);
                        foreach (int threads in new[] { 1, 3 })
                        {
                            float[] y = TestUtil.Guarded(rows * outF);
                            Kernels.LinearFewRowsOn(isa, x, w, b, y, rows, inF, outF, new float[Kernels.LinearFewRowsScratchSize(inF)], threads);
                            TestUtil.AssertClose(expected, y, rows * outF, 0, (inF + 2) * Eps * (inF + 1) / 2,
                                $"few-rows linear {isa} {rows}x{inF}->{outF} bias={withBias} threads={threads}");
                            TestUtil.AssertCanaries(y, rows * outF);
                        }
                    }
                }
            }
        }
    }

    [Fact]
    public void LinearFewRows_is_bit_identical_to_the_managed_gemm_within_one_k_block()
    {
        // The adaLN shapes of the shipped model (inF 128) and the timestep MLP (inF 256): the same fused multiply-add
        // chain per output, so the same bits as Linear on ManagedGemm.
        foreach (GemmIsa isa in AttentionIsas())
        {
            foreach ((int rows, int inF, int outF) in new[] { (20, 128, 768), (20, 128, 256), (40, 256, 128), (3, 64, 13) })
            {
                float[] x = TestUtil.Random(rows * inF, 5), w = TestUtil.Random(outF * inF, 6), b = TestUtil.Random(outF, 7);
                float[] expected = new float[rows * outF], y = new float[rows * outF];
                Kernels.Linear(new ManagedGemm(2, isa), x, w, b, expected, rows, inF, outF);
                Kernels.LinearFewRowsOn(isa, x, w, b, y, rows, inF, outF, new float[Kernels.LinearFewRowsScratchSize(inF)], 2);
                Assert.Equal(expected, y);
            }
        }
    }

    public static TheoryData<int, int> AttentionShapes()
    {
        var data = new TheoryData<int, int>();
        foreach (int tokens in new[] { 1, 7, 16, 63, 64, 65, 196, 257 })
        {
            foreach (int headDim in new[] { 1, 7, 16, 32, 64, 72 })
            {
                data.Add(tokens, headDim);
            }
        }

        return data;
    }

    // Every micro-kernel ISA this machine runs: the flash kernel's block products use them, its softmax bookkeeping
    // takes the widest accelerated vector (or scalar code) that divides the ISA's tile width.
    private static IEnumerable<GemmIsa> AttentionIsas()
    {
        foreach (GemmIsa isa in new[] { GemmIsa.Avx512, GemmIsa.Avx2, GemmIsa.Scalar })
        {
            if (ManagedGemm.IsSupported(isa))
            {
                yield return isa;
            }
        }
    }

    // Outputs are convex combinations of v (|v| ≤ 2): errors come from the headDim-long dots (logits ≤ 4·√headDim)
    // through exp, and the tokens-long weighted sum.
    private static double AttentionTolerance(int tokens, int headDim) => (tokens + (8 * headDim) + 16) * 4 * Eps;

    [Theory]
    [MemberData(nameof(AttentionShapes))]
    public void Attention_matches_reference(int tokens, int headDim)
    {
        const int Batch = 2, Heads = 3;
        int width = Heads * headDim, count = Batch * tokens * width;
        float[] qkv = TestUtil.Random(Batch * tokens * 3 * width, tokens + width, 2f);
        float[] expected = new float[count];
        Reference.Attention(qkv, expected, Batch, tokens, Heads, headDim);
        foreach (int threads in new[] { 1, 3 })
        {
            int scratchSize = Kernels.AttentionScratchSize(tokens, headDim, threads);
            foreach (GemmIsa isa in AttentionIsas())
            {
                float[] y = TestUtil.Guarded(count);
                float[] scratch = TestUtil.Guarded(scratchSize);
                Kernels.AttentionOn(isa, qkv, y, Batch, tokens, Heads, headDim, scratch.AsSpan(0, scratchSize), threads);
                TestUtil.AssertClose(expected, y, count, 0, AttentionTolerance(tokens, headDim),
                    $"attention {isa} threads={threads} t={tokens} d={headDim}");
                TestUtil.AssertCanaries(y, count);
                TestUtil.AssertCanaries(scratch, scratchSize);
            }

            float[] auto = TestUtil.Guarded(count);
            Kernels.Attention(qkv, auto, Batch, tokens, Heads, headDim, new float[scratchSize], threads);
            TestUtil.AssertClose(expected, auto, count, 0, AttentionTolerance(tokens, headDim), $"attention auto t={tokens} d={headDim}");
        }
    }

    [Fact]
    public void Attention_is_stable_for_large_logits()
    {
        // q·k up to 64·30² = 57,600 after scaling: exp would overflow without the running max.
        const int Tokens = 70, HeadDim = 64;
        float[] qkv = TestUtil.Random(Tokens * 3 * HeadDim, 5, 30f);
        float[] expected = new float[Tokens * HeadDim];
        Reference.Attention(qkv, expected, 1, Tokens, 1, HeadDim);
        float[] y = new float[Tokens * HeadDim];
        foreach (GemmIsa isa in AttentionIsas())
        {
            Kernels.AttentionOn(isa, qkv, y, 1, Tokens, 1, HeadDim, new float[Kernels.AttentionScratchSize(Tokens, HeadDim, 1)], 1);
            TestUtil.AssertClose(expected, y, y.Length, 1e-3, 1e-3, $"attention large logits {isa}");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void AttentionWithProbabilities_matches_reference(int threads)
    {
        const int Batch = 2;
        foreach (int tokens in new[] { 1, 7, 64, 65 })
        {
            foreach ((int heads, int headDim) in new[] { (1, 1), (3, 7), (2, 64), (3, 72) })
            {
                int width = heads * headDim, count = Batch * tokens * width, maps = Batch * heads * tokens * tokens;
                float[] qkv = TestUtil.Random(Batch * tokens * 3 * width, tokens + width, 2f);
                float[] expected = new float[count];
                float[] expectedMaps = new float[maps];
                Reference.Attention(qkv, expected, Batch, tokens, heads, headDim);
                Reference.AttentionProbabilities(qkv, expectedMaps, Batch, tokens, heads, headDim);
                float[] y = TestUtil.Guarded(count);
                float[] p = TestUtil.Guarded(maps);
                Kernels.AttentionWithProbabilities(qkv, y, p.AsSpan(0, maps), Batch, tokens, heads, headDim, threads);
                TestUtil.AssertClose(expected, y, count, 0, AttentionTolerance(tokens, headDim),
                    $"attention+maps t={tokens} h={heads} d={headDim}");
                // Probabilities in [0, 1]: the logit error (≤ 8·headDim·ε·4) carries over relatively through exp.
                TestUtil.AssertClose(expectedMaps, p, maps, (8 * headDim + 32) * 4 * Eps, 1e-9, $"maps t={tokens} h={heads} d={headDim}");
                TestUtil.AssertCanaries(y, count);
                TestUtil.AssertCanaries(p, maps);
            }
        }
    }

    [Fact]
    public void AttentionReceived_matches_reference()
    {
        foreach (int batch in new[] { 1, 2 })
        {
            foreach (int heads in new[] { 1, 3, 16 })
            {
                foreach (int tokens in new[] { 0, 1, 7, 63, 64, 65, 257 })
                {
                    int maps = batch * heads * tokens * tokens, count = batch * tokens;
                    float[] p = TestUtil.Random(maps, maps + heads, 0.5f);
                    for (int i = 0; i < maps; i++)
                    {
                        p[i] += 0.5f;                                                     // [0, 1), as probabilities
                    }

                    float[] expected = new float[count];
                    Reference.AttentionReceived(p, expected, batch, heads, tokens);
                    float[] received = TestUtil.Guarded(count);
                    received.AsSpan(0, count).Fill(float.NaN);                            // stale values must not leak in
                    Kernels.AttentionReceived(p, received.AsSpan(0, count), batch, heads, tokens);
                    // A float32 running sum of heads·tokens non-negative terms: relative error below that many ε.
                    TestUtil.AssertClose(expected, received, count, ((heads * tokens) + 2) * Eps, 0,
                        $"received b={batch} h={heads} t={tokens}");
                    TestUtil.AssertCanaries(received, count);
                }
            }
        }
    }

    [Fact]
    public void ValueNorms_matches_reference()
    {
        foreach (int batch in new[] { 1, 2 })
        {
            foreach (int heads in new[] { 1, 3, 16 })
            {
                foreach (int headDim in new[] { 1, 7, 8, 72 })
                {
                    foreach (int tokens in new[] { 0, 1, 5, 65 })
                    {
                        int length = batch * tokens * 3 * heads * headDim, count = batch * heads * tokens;
                        float[] qkv = TestUtil.Random(length, length + heads, 2f);
                        float[] expected = new float[count];
                        Reference.ValueNorms(qkv, expected, batch, tokens, heads, headDim);
                        float[] norms = TestUtil.Guarded(count);
                        norms.AsSpan(0, count).Fill(float.NaN);                           // stale values must not leak in
                        Kernels.ValueNorms(qkv, norms.AsSpan(0, count), batch, tokens, heads, headDim);
                        // A float32 sum of headDim non-negative squares (relative error below headDim·ε) under a square
                        // root, which halves it; the 2ε covers the squaring and the root's rounding.
                        TestUtil.AssertClose(expected, norms, count, (headDim + 2) * Eps, 0,
                            $"value norms b={batch} h={heads} d={headDim} t={tokens}");
                        TestUtil.AssertCanaries(norms, count);
                    }
                }
            }
        }
    }

    [Fact]
    public void ValueNorms_reads_the_value_third_of_each_row()
    {
        // (1 batch, 2 tokens, 2 heads of 2): q and k hold large values that must not count; v rows are (3, 4), (0, 1),
        // (6, 8), (2, 0) whose norms are 5, 1, 10, 2, written (heads, tokens).
        float[] qkv =
        [
            100, 100, 100, 100, -100, -100, -100, -100, 3, 4, 0, 1,
            100, 100, 100, 100, -100, -100, -100, -100, 6, 8, 2, 0,
        ];
        float[] norms = new float[4];
        Kernels.ValueNorms(qkv, norms, 1, 2, 2, 2);
        Assert.Equal([5f, 10f, 1f, 2f], norms);
    }

    [Fact]
    public void ValueNorms_checks_its_spans()
    {
        float[] qkv = new float[2 * 5 * 3 * 6];
        Assert.Throws<ArgumentException>(() => Kernels.ValueNorms(qkv.AsSpan(1), new float[30], 2, 5, 3, 2));
        Assert.Throws<ArgumentException>(() => Kernels.ValueNorms(qkv, new float[29], 2, 5, 3, 2));
        Assert.Throws<ArgumentException>(() => Kernels.ValueNorms(qkv, qkv.AsSpan(0, 30), 2, 5, 3, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => Kernels.ValueNorms(qkv, new float[30], 2, 5, 0, 2));
    }

    [Fact]
    public void AttentionReceived_checks_its_spans()
    {
        float[] p = new float[2 * 3 * 5 * 5];
        Assert.Throws<ArgumentException>(() => Kernels.AttentionReceived(p.AsSpan(1), new float[10], 2, 3, 5));
        Assert.Throws<ArgumentException>(() => Kernels.AttentionReceived(p, new float[9], 2, 3, 5));
        Assert.Throws<ArgumentException>(() => Kernels.AttentionReceived(p, p.AsSpan(0, 10), 2, 3, 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => Kernels.AttentionReceived(p, new float[10], 2, 0, 5));
    }

    [Fact]
    public void Attention_checks_its_scratch()
    {
        float[] qkv = new float[2 * 10 * 3 * 64];
        float[] y = new float[2 * 10 * 64];
        int size = Kernels.AttentionScratchSize(10, 64, 2);
        Assert.Throws<ArgumentException>(() => Kernels.Attention(qkv, y, 2, 10, 1, 64, new float[size - 1], 2));
        Assert.Throws<ArgumentException>(() => Kernels.Attention(qkv, qkv.AsSpan(0, y.Length), 2, 10, 1, 64, new float[size], 2));
    }

    [Fact]
    public void LayerNormModulate_matches_reference_and_the_unfused_pair()
    {
        const int Batch = 2;
        foreach (int tokens in new[] { 1, 7, 65 })
        {
            foreach (int dim in s_ragged)
            {
                int modStride = (6 * dim) + 3;
                int count = Batch * tokens * dim;
                float[] x = TestUtil.Random(count, dim + tokens, 3f);
                for (int i = 0; i < x.Length; i++)
                {
                    x[i] += 5f;
                }

                float[] mod = TestUtil.Random(Batch * modStride, dim + 1);
                float[] expected = new float[count];
                Reference.LayerNormModulate(x, expected, mod, modStride, 3 * dim, 4 * dim, Batch, tokens, dim, 1e-6f);
                float[] y = TestUtil.Guarded(count);
                Kernels.LayerNormModulate(x, y, mod, modStride, 3 * dim, 4 * dim, Batch, tokens, dim);
                // LayerNorm's error (see LayerNorm_matches_reference, here |x|/std ≈ 3) times |1 + scale| ≤ 2, plus the FMA.
                TestUtil.AssertClose(expected, y, count, 1e-5, 2 * 3 * dim * Eps + (8 * Eps), $"layernorm+modulate {tokens}x{dim}");
                TestUtil.AssertCanaries(y, count);

                // Same arithmetic as LayerNorm then Modulate: bit for bit.
                float[] pair = new float[count];
                Kernels.LayerNorm(x, pair, Batch * tokens, dim);
                Kernels.Modulate(pair, pair, mod, modStride, 3 * dim, 4 * dim, Batch, tokens, dim);
                TestUtil.AssertEqual(pair, y, count, $"fused vs pair {tokens}x{dim}");

                Kernels.LayerNormModulate(x, x, mod, modStride, 3 * dim, 4 * dim, Batch, tokens, dim);
                TestUtil.AssertEqual(y, x, count, $"in place {tokens}x{dim}");
            }
        }
    }

    [Fact]
    public void AddBiasGeluTanh_matches_reference()
    {
        foreach (int rows in new[] { 1, 7 })
        {
            foreach (int cols in new[] { 0, 1, 7, 8, 15, 16, 17, 63, 64, 65, 1159 })
            {
                float[] x = TestUtil.Random(rows * cols, cols + rows, 6f);
                float[] bias = TestUtil.Random(cols, cols + 2, 2f);
                float[] expected = (float[])x.Clone();
                Reference.AddBiasGeluTanh(expected, bias, rows, cols);
                float[] y = TestUtil.Guarded(rows * cols);
                x.CopyTo(y, 0);
                Kernels.AddBiasGeluTanh(y, bias, rows, cols);
                // GeluTanh's bound plus one rounding of x + b.
                TestUtil.AssertClose(expected, y, rows * cols, 24 * Eps, 1e-7, $"bias+gelu {rows}x{cols}");
                TestUtil.AssertCanaries(y, rows * cols);
            }
        }
    }

    [Fact]
    public void LinearGeluTanh_matches_reference()
    {
        var gemm = new ManagedGemm(2);
        foreach (int rows in new[] { 1, 7, 65 })
        {
            foreach ((int inF, int outF) in new[] { (1, 7), (7, 63), (64, 65), (65, 64), (300, 17) })
            {
                float[] x = TestUtil.Random(rows * inF, rows + inF);
                float[] w = TestUtil.Random(outF * inF, outF + inF);
                float[] bias = TestUtil.Random(outF, outF);
                foreach (bool withBias in new[] { false, true })
                {
                    float[] b = withBias ? bias : [];
                    float[] expected = new float[rows * outF];
                    Reference.Linear(x, w, b, expected, rows, inF, outF);
                    Reference.GeluTanh(expected, expected);
                    float[] y = TestUtil.Guarded(rows * outF);
                    Kernels.LinearGeluTanh(gemm, x, w, b, y, rows, inF, outF);
                    // The Linear bound (GELU's slope is at most 1.13) plus GELU's own relative error.
                    TestUtil.AssertClose(expected, y, rows * outF, 24 * Eps, (inF + 2) * Eps * (inF + 1) * 0.6,
                        $"linear+gelu {rows}x{inF}->{outF} bias={withBias}");
                    TestUtil.AssertCanaries(y, rows * outF);
                }
            }
        }
    }

    [Fact]
    public void PatchEmbed_matches_reference()
    {
        var gemm = new ManagedGemm(2);
        foreach ((int n, int c, int h, int w, int p, int dim) in new[]
        {
            (1, 1, 1, 1, 1, 1), (2, 4, 6, 4, 2, 7), (1, 3, 8, 12, 4, 65), (2, 1, 28, 28, 2, 64), (1, 4, 4, 4, 2, 1159),
        })
        {
            int tokens = (h / p) * (w / p);
            int patch = c * p * p;
            float[] img = TestUtil.Random(n * c * h * w, h + w + c);
            float[] weight = TestUtil.Random(dim * patch, dim + patch);
            float[] bias = TestUtil.Random(dim, dim);
            float[] expected = new float[n * tokens * dim];
            Reference.PatchEmbed(img, weight, bias, expected, n, c, h, w, p, dim);
            float[] y = TestUtil.Guarded(n * tokens * dim);
            float[] scratch = TestUtil.Guarded(n * tokens * patch);
            Kernels.PatchEmbed(gemm, img, weight, bias, y, scratch.AsSpan(0, n * tokens * patch), n, c, h, w, p, dim);
            TestUtil.AssertClose(expected, y, n * tokens * dim, 0, (patch + 3) * Eps * (patch + 1),
                $"patchembed n={n} c={c} {h}x{w} p={p} dim={dim}");
            TestUtil.AssertCanaries(y, n * tokens * dim);
            TestUtil.AssertCanaries(scratch, n * tokens * patch);
        }
    }

    [Fact]
    public void Unpatchify_matches_reference_exactly()
    {
        foreach ((int n, int c, int h, int w, int p) in new[] { (1, 1, 1, 1, 1), (2, 8, 4, 6, 2), (1, 3, 12, 8, 4), (2, 1, 28, 28, 2) })
        {
            int count = n * c * h * w;
            float[] x = TestUtil.Random(count, count);
            float[] expected = new float[count];
            Reference.Unpatchify(x, expected, n, c, h, w, p);
            float[] img = TestUtil.Guarded(count);
            Kernels.Unpatchify(x, img, n, c, h, w, p);
            TestUtil.AssertEqual(expected, img, count, $"unpatchify n={n} c={c} {h}x{w} p={p}");
            TestUtil.AssertCanaries(img, count);
        }
    }

    [Fact]
    public void PosEmbed2D_matches_reference_exactly()
    {
        foreach (int dim in new[] { 4, 8, 64, 1152 })
        {
            foreach (int grid in new[] { 0, 1, 2, 7, 16 })
            {
                int count = grid * grid * dim;
                float[] expected = new float[count];
                Reference.PosEmbed2D(expected, dim, grid);
                float[] y = TestUtil.Guarded(count);
                Kernels.PosEmbed2D(y, dim, grid);
                TestUtil.AssertEqual(expected, y, count, $"posembed dim={dim} grid={grid}");
                TestUtil.AssertCanaries(y, count);
            }
        }
    }

    [Fact]
    public void TimestepEmbedding_matches_reference()
    {
        float[] t = [0f, 1f, 7.5f, 63f, 500f, 999f];
        foreach (int dim in new[] { 1, 2, 7, 64, 65, 256 })
        {
            int count = t.Length * dim;
            float[] expected = new float[count];
            Reference.TimestepEmbedding(t, expected, dim, 10000f);
            float[] y = TestUtil.Guarded(count);
            Kernels.TimestepEmbedding(t, y, dim);
            // The kernel follows torch's float32 order: the argument t·f carries ~(|ln 10000| + 3)·ε relative error,
            // so cos/sin are within |t·f|·13ε (plus an ulp of the result) of the double reference.
            int half = dim / 2;
            for (int i = 0; i < t.Length; i++)
            {
                for (int j = 0; j < dim; j++)
                {
                    double freq = half == 0 || j >= 2 * half ? 0 : Math.Exp(-Math.Log(10000.0) * (j % half) / half);
                    double tol = (Math.Abs(t[i] * freq) * 13 * Eps) + (2 * Eps);
                    double e = expected[(i * dim) + j];
                    double a = y[(i * dim) + j];
                    Assert.True(Math.Abs(a - e) <= tol, $"timestep dim={dim} t={t[i]} j={j}: {a:R} vs {e:R} (tol {tol:E2})");
                }
            }

            TestUtil.AssertCanaries(y, count);
        }
    }
}
