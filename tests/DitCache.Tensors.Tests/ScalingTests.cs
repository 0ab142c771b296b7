using System;
using System.Collections.Generic;
using System.Threading;
using Xunit;

namespace DitCache.Tensors.Tests;

/// <summary>
/// Issue 21: the passes that now run on the worker pool (row-parallel element-wise kernels, the managed GEMM's fused
/// Linear epilogues, attention with several key blocks) against the naive references, and bit for bit against one
/// thread (the --deterministic contract), on every micro-kernel ISA this machine runs.
/// </summary>
public class ScalingTests
{
    private const double Eps = 1.1920928955078125e-7;

    private static readonly int[] s_threads = [1, 2, 3, 4];

    private static IEnumerable<GemmIsa> Isas()
    {
        foreach (GemmIsa isa in new[] { GemmIsa.Avx512, GemmIsa.Avx2, GemmIsa.Scalar })
        {
            if (ManagedGemm.IsSupported(isa))
            {
                yield return isa;
            }
        }
    }

    [Theory]
    [InlineData(2, 130, 65)]      // 16,900 floats: just above the size at which the pass is shared
    [InlineData(1, 15, 1159)]
    [InlineData(2, 256, 384)]     // DiT-S/2, batch 2
    [InlineData(3, 7, 33)]        // too small to share: one chunk on the caller
    public void Row_parallel_passes_match_reference_and_one_thread_bit_for_bit(int batch, int tokens, int dim)
    {
        int modStride = (6 * dim) + 3, count = batch * tokens * dim;
        float[] x = TestUtil.Random(count, dim + tokens, 3f);
        for (int i = 0; i < x.Length; i++)
        {
            x[i] += 5f;
        }

        float[] mod = TestUtil.Random(batch * modStride, dim + 1);
        float[] feature = TestUtil.Random(count, dim + 2, 2f);
        float[] bias = TestUtil.Random(dim, dim + 3, 2f);

        float[] expectedNorm = new float[count];
        Reference.LayerNormModulate(x, expectedNorm, mod, modStride, 3 * dim, 4 * dim, batch, tokens, dim, 1e-6f);
        float[] expectedGated = (float[])x.Clone();
        Reference.GatedResidualAdd(expectedGated, feature, mod, modStride, 2 * dim, batch, tokens, dim);
        float[] expectedGelu = (float[])feature.Clone();
        Reference.AddBiasGeluTanh(expectedGelu, bias, batch * tokens, dim);

        float[]? norm1 = null, gated1 = null, gelu1 = null;
        foreach (int threads in s_threads)
        {
            float[] norm = TestUtil.Guarded(count);
            Kernels.LayerNormModulate(x, norm, mod, modStride, 3 * dim, 4 * dim, batch, tokens, dim, threads: threads);
            // As LayerNormModulate_matches_reference_and_the_unfused_pair.
            TestUtil.AssertClose(expectedNorm, norm, count, 1e-5, 2 * 3 * dim * Eps + (8 * Eps), $"layernorm+modulate t{threads}");
            TestUtil.AssertCanaries(norm, count);

            float[] gated = TestUtil.Guarded(count);
            x.CopyTo(gated, 0);
            Kernels.GatedResidualAdd(gated, feature, mod, modStride, 2 * dim, batch, tokens, dim, threads);
            TestUtil.AssertClose(expectedGated, gated, count, Eps, 1e-30, $"gated t{threads}");   // one FMA rounding
            TestUtil.AssertCanaries(gated, count);

            float[] gelu = TestUtil.Guarded(count);
            feature.CopyTo(gelu, 0);
            Kernels.AddBiasGeluTanh(gelu, bias, batch * tokens, dim, threads);
            TestUtil.AssertClose(expectedGelu, gelu, count, 24 * Eps, 1e-7, $"bias+gelu t{threads}");   // as AddBiasGeluTanh_matches_reference
            TestUtil.AssertCanaries(gelu, count);

            norm1 ??= norm;
            gated1 ??= gated;
            gelu1 ??= gelu;
            TestUtil.AssertEqual(norm1, norm, count, $"layernorm+modulate t{threads} vs t1");
            TestUtil.AssertEqual(gated1, gated, count, $"gated t{threads} vs t1");
            TestUtil.AssertEqual(gelu1, gelu, count, $"bias+gelu t{threads} vs t1");
        }
    }

    public static TheoryData<int, int, int> LinearShapes() => new()
    {
        { 65, 300, 97 },       // ragged everywhere
        { 130, 64, 200 },
        { 7, 1159, 65 },       // two k blocks: the bias goes in before the first only
        { 40, 2400, 40 },      // three k blocks
        { 512, 384, 1536 },    // DiT-S/2 fc1, batch 2
        { 3, 17, 5 },          // below the parallel threshold: one block on the caller
    };

    [Theory]
    [MemberData(nameof(LinearShapes))]
    public void Fused_linear_epilogues_equal_the_separate_passes_and_do_not_depend_on_threads(int rows, int inF, int outF)
    {
        float[] x = TestUtil.Random(rows * inF, rows + inF);
        float[] w = TestUtil.Random(outF * inF, outF + inF);
        float[] bias = TestUtil.Random(outF, outF + 1);
        float[] expectedLinear = new float[rows * outF];
        Reference.Linear(x, w, bias, expectedLinear, rows, inF, outF);
        float[] expectedGelu = (float[])expectedLinear.Clone();
        Reference.GeluTanh(expectedGelu, expectedGelu);
        foreach (GemmIsa isa in Isas())
        {
            foreach (GemmPrecision precision in new[] { GemmPrecision.Float32, GemmPrecision.BFloat16 })
            {
                float[]? linear1 = null, gelu1 = null;
                foreach (int threads in s_threads)
                {
                    var gemm = new ManagedGemm(threads, isa, precision);
                    bool prepared = precision == GemmPrecision.Float32 && threads % 2 == 0;
                    if (prepared)
                    {
                        gemm.Prepare(w, outF, inF);                 // the model's path: panels packed once
                    }

                    string what = $"{isa} {precision} t{threads}{(prepared ? " prepared" : "")} {rows}x{inF}->{outF}";

                    float[] linear = TestUtil.Guarded(rows * outF);
                    Kernels.Linear(gemm, x, w, bias, linear, rows, inF, outF);
                    float[] separate = new float[rows * outF];
                    for (int r = 0; r < rows; r++)
                    {
                        bias.CopyTo(separate, r * outF);
                    }

                    gemm.Multiply(rows, outF, inF, x, inF, w, inF, transB: true, separate, outF, accumulate: true);
                    TestUtil.AssertEqual(separate, linear, rows * outF, $"linear fused vs bias then GEMM, {what}");
                    TestUtil.AssertCanaries(linear, rows * outF);

                    float[] gelu = TestUtil.Guarded(rows * outF);
                    Kernels.LinearGeluTanh(gemm, x, w, bias, gelu, rows, inF, outF);
                    float[] separateGelu = new float[rows * outF];
                    gemm.Multiply(rows, outF, inF, x, inF, w, inF, transB: true, separateGelu, outF);
                    Kernels.AddBiasGeluTanh(separateGelu, bias, rows, outF);
                    TestUtil.AssertEqual(separateGelu, gelu, rows * outF, $"linear+gelu fused vs GEMM then pass, {what}");
                    TestUtil.AssertCanaries(gelu, rows * outF);

                    if (precision == GemmPrecision.Float32)
                    {
                        // As Linear_matches_reference_with_and_without_bias and LinearGeluTanh_matches_reference.
                        TestUtil.AssertClose(expectedLinear, linear, rows * outF, 0, (inF + 2) * Eps * (inF + 1) / 2, $"linear vs reference, {what}");
                        TestUtil.AssertClose(expectedGelu, gelu, rows * outF, 24 * Eps, (inF + 2) * Eps * (inF + 1) * 0.6, $"linear+gelu vs reference, {what}");
                    }

                    linear1 ??= linear;
                    gelu1 ??= gelu;
                    TestUtil.AssertEqual(linear1, linear, rows * outF, $"linear t{threads} vs t1, {what}");
                    TestUtil.AssertEqual(gelu1, gelu, rows * outF, $"linear+gelu t{threads} vs t1, {what}");
                }
            }
        }
    }

    [Theory]
    [InlineData(33, 7)]
    [InlineData(100, 64)]
    [InlineData(300, 72)]
    [InlineData(257, 1)]
    public void Attention_over_several_key_blocks_matches_reference(int tokens, int headDim)
    {
        const int Batch = 2, Heads = 2;
        int width = Heads * headDim, count = Batch * tokens * width;
        float[] qkv = TestUtil.Random(Batch * tokens * 3 * width, tokens + headDim, 2f);
        float[] expected = new float[count];
        Reference.Attention(qkv, expected, Batch, tokens, Heads, headDim);
        // As Attention_matches_reference: the headDim-long dots through exp, then the tokens-long weighted sum.
        double tolerance = (tokens + (8 * headDim) + 16) * 4 * Eps;
        foreach (GemmIsa isa in Isas())
        {
            foreach (int keyBlock in new[] { 32, 64, 96, 512 })
            {
                float[]? first = null;
                foreach (int threads in new[] { 1, 2 })
                {
                    int size = Kernels.AttentionScratchSize(tokens, headDim, threads);
                    float[] y = TestUtil.Guarded(count);
                    float[] scratch = TestUtil.Guarded(size);
                    Kernels.AttentionOn(isa, qkv, y, Batch, tokens, Heads, headDim, scratch.AsSpan(0, size), threads, keyBlock);
                    string what = $"attention {isa} key block {keyBlock} t{threads} T={tokens} d={headDim}";
                    TestUtil.AssertClose(expected, y, count, 0, tolerance, what);
                    TestUtil.AssertCanaries(y, count);
                    TestUtil.AssertCanaries(scratch, size);
                    first ??= y;
                    TestUtil.AssertEqual(first, y, count, what + " vs one thread");
                }
            }
        }
    }

    [Fact]
    public void Attention_rescales_stably_across_key_blocks_for_large_logits()
    {
        // The data of Attention_is_stable_for_large_logits (logits up to 64·30² after scaling, so the tolerance is
        // that test's: a rounding of a score that large moves a weight by about 1e-3) in key blocks of 32: every later
        // block that raises the running max rescales the sums and outputs by exp(m_old − m_new), which would
        // overflow if done the naive way.
        const int Tokens = 70, HeadDim = 64;
        float[] qkv = TestUtil.Random(Tokens * 3 * HeadDim, 5, 30f);
        float[] expected = new float[Tokens * HeadDim];
        Reference.Attention(qkv, expected, 1, Tokens, 1, HeadDim);
        foreach (GemmIsa isa in Isas())
        {
            float[] y = new float[Tokens * HeadDim];
            Kernels.AttentionOn(isa, qkv, y, 1, Tokens, 1, HeadDim, new float[Kernels.AttentionScratchSize(Tokens, HeadDim, 1)], 1, 32);
            TestUtil.AssertClose(expected, y, y.Length, 1e-3, 1e-3, $"attention large logits {isa}");
        }
    }

    [Fact]
    public void Attention_refuses_a_key_block_it_has_no_scratch_for()
    {
        float[] qkv = new float[2 * 10 * 3 * 64], y = new float[2 * 10 * 64];
        float[] scratch = new float[Kernels.AttentionScratchSize(10, 64, 1)];
        Assert.Throws<ArgumentOutOfRangeException>(() => Kernels.AttentionOn(GemmIsa.Auto, qkv, y, 2, 10, 1, 64, scratch, 1, 48));
        Assert.Throws<ArgumentOutOfRangeException>(() => Kernels.AttentionOn(GemmIsa.Auto, qkv, y, 2, 10, 1, 64, scratch, 1, 1024));
    }

    [Fact]
    public void Pool_hands_every_item_out_once_across_quick_regions_and_sleeps()
    {
        // Back-to-back regions (workers still spinning: offers taken with one compare-exchange), then pauses longer
        // than the spin (workers asleep: offers by permit), and regions too short for a late worker to join
        // (offers taken back). Every item must run exactly once whichever way each region went.
        long[] hits = new long[7];
        int regions = 0;
        for (int round = 0; round < 3000; round++)
        {
            int items = 1 + (round % hits.Length);
            WorkerPool.Run((item, _) => Interlocked.Increment(ref hits[item]), items, 1 + (round % 3));
            regions++;
            if (round % 500 == 499)
            {
                Thread.Sleep(2 * ((WorkerPool.SpinMicroseconds / 1000) + 1));
            }
        }

        for (int item = 0; item < hits.Length; item++)
        {
            long expected = 0;
            for (int round = 0; round < regions; round++)
            {
                expected += item < 1 + (round % hits.Length) ? 1 : 0;
            }

            Assert.Equal(expected, hits[item]);
        }
    }
}
