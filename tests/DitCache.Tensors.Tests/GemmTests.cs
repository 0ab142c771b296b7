using System;
using System.Linq;
using System.IO;
using System.Collections.Generic;
using DitCache.Tests;
using Xunit;

namespace DitCache.Tensors.Tests;

public class GemmTests
{
    // Ragged sizes around the tiles (Mr 8/6/4, Nr 32/16/8) and the blocks (k blocks of at most 1152 for float32 and
    // 512 for BF16, the BF16 row block 96, slab widths 128 to 1152 columns): k = 1159 is cut into two float32 k blocks
    // of 580 and 579 and three BF16 ones of 387 and 385, k = 2311 into three float32 blocks of 771 and 769. (m, n, k).
    private static readonly int[][] s_shapes =
    [
        [1, 1, 1], [1, 7, 7], [7, 1, 63], [7, 7, 7], [63, 64, 65], [64, 65, 63], [65, 63, 64], [64, 64, 64],
        [1, 65, 1159], [7, 63, 1159], [65, 7, 1159], [130, 33, 70], [9, 530, 260], [13, 41, 2311],
    ];

    public static IEnumerable<object[]> Isas()
    {
        foreach (GemmIsa isa in Enum.GetValues<GemmIsa>())
        {
            if (isa != GemmIsa.Auto && ManagedGemm.IsSupported(isa))
            {
                yield return [isa];
            }
        }
    }

    public static IEnumerable<object[]> Cases()
    {
        foreach (object[] isa in Isas())
        {
            foreach (int threads in new[] { 1, 3 })
            {
                foreach (bool transB in new[] { false, true })
                {
                    foreach (bool accumulate in new[] { false, true })
                    {
                        yield return [isa[0], threads, transB, accumulate];
                    }
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Managed_matches_reference_on_ragged_shapes_with_strides(GemmIsa isa, int threads, bool transB, bool accumulate)
    {
        var gemm = new ManagedGemm(threads, isa);
        Assert.Equal(isa, gemm.Isa);
        Assert.Equal("managed-" + isa.ToString().ToLowerInvariant(), gemm.Name);
        foreach (int[] s in s_shapes)
        {
            CheckAgainstReference(gemm, s[0], s[1], s[2], transB, accumulate);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Bf16_matches_reference_on_bf16_rounded_inputs(GemmIsa isa, int threads, bool transB, bool accumulate)
    {
        // Oracle: Reference.MatMul on A and B rounded to BF16 by BFloat16.Round (nearest even); the products of BF16
        // values are exact in float32, so the GEMM must be within float32 summation error of it.
        var gemm = new ManagedGemm(threads, isa, GemmPrecision.BFloat16);
        Assert.Equal("managed-" + isa.ToString().ToLowerInvariant() + "-bf16", gemm.Name);
        foreach (int[] s in s_shapes)
        {
            CheckAgainstReference(gemm, s[0], s[1], s[2], transB, accumulate, BFloat16.Round);
        }
    }

    [Theory]
    [MemberData(nameof(PreparedCases))]
    public void Prepared_weight_gives_the_result_of_packing_per_call(GemmIsa isa, GemmPrecision precision, int threads)
    {
        // Same panels, same blocking, same sums: bit for bit the unprepared result. Shapes cross KcMax (512) and the
        // panel width, and the parallel threshold.
        foreach ((int m, int n, int k) in new[] { (7, 63, 1159), (130, 97, 64), (9, 33, 9), (64, 530, 385) })
        {
            float[] a = TestUtil.Random(m * k, m + k);
            float[] w = TestUtil.Random(n * k, n + k);
            float[] c0 = TestUtil.Random(m * n, m + n);
            var plain = new ManagedGemm(threads, isa, precision);
            var prepared = new ManagedGemm(threads, isa, precision);
            prepared.Prepare(w, n, k);
            prepared.Prepare(w, n, k);                                  // a second time: ignored
            foreach (bool accumulate in new[] { false, true })
            {
                float[] expected = (float[])c0.Clone();
                plain.Multiply(m, n, k, a, k, w, k, transB: true, expected, n, accumulate);
                float[] actual = (float[])c0.Clone();
                prepared.Multiply(m, n, k, a, k, w, k, transB: true, actual, n, accumulate);
                Assert.Equal(expected, actual);
            }

            // A different array of the same shape, and the prepared one under another view, are not confused with it.
            CheckAgainstReference(prepared, m, n, k, transB: true, accumulate: false,
                precision == GemmPrecision.BFloat16 ? BFloat16.Round : null);
            float[] other = TestUtil.Random(n * k, 7);
            float[] c1 = new float[m * n], c2 = new float[m * n];
            prepared.Multiply(m, n, k, a, k, other, k, transB: true, c1, n);
            plain.Multiply(m, n, k, a, k, other, k, transB: true, c2, n);
            Assert.Equal(c2, c1);
            prepared.Multiply(m, n - 1, k, a, k, w, k, transB: true, c1, n);
            plain.Multiply(m, n - 1, k, a, k, w, k, transB: true, c2, n);
            Assert.Equal(c2, c1);

            // The packed copy is what the prepared GEMM multiplies by: a change to the array after Prepare (which the
            // contract forbids) does not show, so the calls above did take the prepared path.
            float[] before = new float[m * n];
            prepared.Multiply(m, n, k, a, k, w, k, transB: true, before, n);
            w[0] += 1f;
            prepared.Multiply(m, n, k, a, k, w, k, transB: true, c1, n);
            Assert.Equal(before, c1);
        }
    }

    [Theory]
    [MemberData(nameof(PreparedCases))]
    public void Prepared_in_place_gives_the_result_of_packing_per_call_and_keeps_no_copy_when_the_panels_fit(
        GemmIsa isa, GemmPrecision precision, int threads)
    {
        // n = 64 and 96 are multiples of every panel width (8, 16, 32): packed in place at either precision, no copy.
        // n = 5 is below every panel width: float32 panels do not fit in 5·k floats, so a packed copy is kept. n = 33
        // is ragged: whichever way it goes, the product must not change. k crosses KcMax (512).
        foreach ((int m, int n, int k, bool? fits) in new (int, int, int, bool?)[] { (7, 64, 1159, true), (130, 96, 64, true), (64, 5, 385, precision == GemmPrecision.Float32 ? false : null), (9, 33, 9, null) })
        {
            float[] a = TestUtil.Random(m * k, m + k);
            float[] w = TestUtil.Random(n * k, n + k);
            float[] original = (float[])w.Clone();
            float[] c0 = TestUtil.Random(m * n, m + n);
            var plain = new ManagedGemm(threads, isa, precision);
            var inPlace = new ManagedGemm(threads, isa, precision);
            inPlace.PrepareInPlace(w, n, k);
            inPlace.PrepareInPlace(w, n, k);                            // a second time: ignored (packing twice would scramble it)
            foreach (bool accumulate in new[] { false, true })
            {
                float[] expected = (float[])c0.Clone();
                plain.Multiply(m, n, k, a, k, original, k, transB: true, expected, n, accumulate);
                float[] actual = (float[])c0.Clone();
                inPlace.Multiply(m, n, k, a, k, w, k, transB: true, actual, n, accumulate);
                Assert.Equal(expected, actual);
            }

            if (fits is bool f)
            {
                Assert.Equal(f, inPlace.IsPackedInPlace(w));
                Assert.Equal(f, inPlace.PreparedCopyFloats == 0);
                Assert.Equal(f, !w.AsSpan().SequenceEqual(original));   // in place: the array now holds panels
            }
        }
    }

    [Fact]
    public void The_interface_default_of_prepare_in_place_leaves_the_array_as_it_was()
    {
        IGemm blas = new NoPrepareGemm();
        float[] w = [1, 2, 3, 4];
        blas.PrepareInPlace(w, 2, 2);
        Assert.Equal([1f, 2f, 3f, 4f], w);
        Assert.Throws<ArgumentException>(() => new ManagedGemm().PrepareInPlace(new float[3], 2, 2));
    }

    public static IEnumerable<object[]> PreparedCases()
    {
        foreach (object[] isa in Isas())
        {
            foreach (GemmPrecision precision in Enum.GetValues<GemmPrecision>())
            {
                foreach (int threads in new[] { 1, 2 })
                {
                    yield return [isa[0], precision, threads];
                }
            }
        }
    }

    [Fact]
    public void Prepare_checks_its_arguments()
    {
        var gemm = new ManagedGemm();
        Assert.Throws<ArgumentNullException>(() => gemm.Prepare(null!, 2, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => gemm.Prepare(new float[4], 0, 2));
        Assert.Throws<ArgumentException>(() => gemm.Prepare(new float[3], 2, 2));
        IGemm blas = new NoPrepareGemm();
        blas.Prepare(new float[4], 2, 2);                                // the interface default does nothing
    }

    [Fact]
    public void Factory_builds_the_bf16_backend_and_a_float32_one_for_metrics()
    {
        IGemm gemm = GemmFactory.Create("Managed-BF16", 2);
        var managed = Assert.IsType<ManagedGemm>(gemm);
        Assert.Equal(GemmPrecision.BFloat16, managed.Precision);
        Assert.Equal(2, managed.Threads);
        var metrics = Assert.IsType<ManagedGemm>(GemmFactory.Float32(gemm));
        Assert.Equal(GemmPrecision.Float32, metrics.Precision);
        Assert.Equal(2, metrics.Threads);
        IGemm plain = GemmFactory.Create("managed", 1);
        Assert.Same(plain, GemmFactory.Float32(plain));
        Assert.Contains("managed-bf16", GemmFactory.Backends);
    }

    [Theory]
    [MemberData(nameof(Isas))]
    public void Prepared_calls_allocate_nothing(GemmIsa isa)
    {
        foreach (GemmPrecision precision in Enum.GetValues<GemmPrecision>())
        {
            const int M = 70, N = 90, K = 400;
            float[] a = TestUtil.Random(M * K, 1), w = TestUtil.Random(N * K, 2), c = new float[M * N];
            var gemm = new ManagedGemm(1, isa, precision);
            gemm.Prepare(w, N, K);
            gemm.Multiply(M, N, K, a, K, w, K, transB: true, c, N);        // first calls: this thread's pack buffers and
            gemm.Multiply(M, N, K, a, K, w, K, transB: true, c, N, accumulate: true); // any one-time state of either path

            // A per-call allocation shows in every round; the runtime's own one-off work on this thread (tiered JIT
            // installing a rejitted method under load, seen once in a CI run) shows in one round at most.
            long fewest = long.MaxValue;
            for (int round = 0; round < 3 && fewest > 0; round++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                for (int i = 0; i < 3; i++)
                {
                    gemm.Multiply(M, N, K, a, K, w, K, transB: true, c, N, accumulate: true);
                }

                fewest = Math.Min(fewest, GC.GetAllocatedBytesForCurrentThread() - before);
            }

            Assert.Equal(0, fewest);
        }
    }

    [Theory]
    [MemberData(nameof(Isas))]
    public void RunRows_matches_reference_on_strided_operands(GemmIsa isa)
    {
        switch (isa)
        {
            case GemmIsa.Avx512:
                CheckRunRows<Avx512Kernel8x32>();
                break;
            case GemmIsa.Avx2:
                CheckRunRows<Avx2Kernel6x16>();
                break;
            default:
                CheckRunRows<ScalarKernel4x8>();
                break;
        }
    }

    // One Mr×Nr tile from unpacked row-major A (stride lda) and B (stride ldb) into C (stride ldc), for k = 0, 1,
    // 7, 64, 1159, overwriting and accumulating; canaries around the tile in C.
    private static void CheckRunRows<TKernel>()
        where TKernel : IGemmMicroKernel
    {
        int mr = TKernel.Mr, nr = TKernel.Nr;
        foreach (int k in new[] { 0, 1, 7, 64, 1159 })
        {
            int lda = k + 3, ldb = nr + 5, ldc = nr + 9;
            float[] a = TestUtil.Random(Math.Max(1, mr * lda), k + 1);
            float[] b = TestUtil.Random(Math.Max(1, (k * ldb) + nr), k + 2);
            float[] c0 = TestUtil.Random(mr * ldc, k + 3);
            foreach (bool add in new[] { false, true })
            {
                float[] expected = (float[])c0.Clone();
                Reference.MatMul(mr, nr, k, a, lda, b, ldb, transB: false, expected, ldc, accumulate: add);
                float[] c = (float[])c0.Clone();
                MicroKernel.RunRows<TKernel>(k, a, lda, b, ldb, c, ldc, add);

                for (int i = 0; i < mr; i++)
                {
                    for (int j = 0; j < ldc; j++)
                    {
                        int at = (i * ldc) + j;
                        if (j < nr)
                        {
                            Assert.True(Math.Abs(c[at] - expected[at]) <= (k + 2) * 1.2e-7 * (k + 1),
                                $"{typeof(TKernel).Name} k={k} add={add} C[{i},{j}] = {c[at]} vs {expected[at]}");
                        }
                        else
                        {
                            Assert.Equal(c0[at], c[at]);        // outside the tile: untouched
                        }
                    }
                }
            }
        }
    }

    [Fact]
    public void Managed_uses_the_parallel_path_on_a_larger_shape()
    {
        // Above the parallel threshold, with a thread count that does not divide the tiles evenly.
        foreach (object[] isa in Isas())
        {
            CheckAgainstReference(new ManagedGemm(2, (GemmIsa)isa[0]), 97, 130, 129, transB: true, accumulate: false);
            CheckAgainstReference(new ManagedGemm(3, (GemmIsa)isa[0]), 200, 40, 70, transB: false, accumulate: true);
        }
    }

    [OpenBlasFact]
    public void OpenBlas_matches_reference_when_installed()
    {
        var gemm = new OpenBlasGemm(2);
        CheckAgainstReference(gemm, 65, 63, 1159, transB: true, accumulate: true);
        CheckAgainstReference(gemm, 63, 65, 64, transB: false, accumulate: false);
    }

    [Fact]
    public void Auto_backend_is_managed_wherever_a_vector_kernel_runs()
    {
        // The table of docs/benchmarks/gemm.md: managed with AVX-512 or AVX2, OpenBLAS (when installed) only for the
        // scalar fallback. Run under DOTNET_EnableAVX512=0 and DOTNET_EnableHWIntrinsic=0 too (test.sh).
        Assert.True(GemmFactory.AutoPicksManaged(GemmIsa.Avx512));
        Assert.True(GemmFactory.AutoPicksManaged(GemmIsa.Avx2));
        Assert.False(GemmFactory.AutoPicksManaged(GemmIsa.Scalar));
        IGemm auto = GemmFactory.Create("auto", 2);
        Assert.Equal(2, auto.Threads);
        if (new ManagedGemm().Isa != GemmIsa.Scalar)
        {
            Assert.Equal(new ManagedGemm().Name, Assert.IsType<ManagedGemm>(auto).Name);
        }
        else
        {
            Assert.Equal(OpenBlasGemm.IsAvailable ? typeof(OpenBlasGemm) : typeof(ManagedGemm), auto.GetType());
        }
    }

    [LinuxFact]
    public void Auto_picks_the_widest_isa_the_cpu_and_the_switches_allow()
    {
        // Expected from outside the code under test: the CPU's flags in /proc/cpuinfo and the runtime switches test.sh
        // sets (DOTNET_EnableAVX512=0, DOTNET_EnableHWIntrinsic=0). The one runtime input is Vector512's acceleration,
        // which .NET turns off on CPUs that slow down under 512-bit code.
        string[] flags = File.ReadLines("/proc/cpuinfo").First(l => l.StartsWith("flags", StringComparison.Ordinal)).Split(' ');
        bool intrinsics = Environment.GetEnvironmentVariable("DOTNET_EnableHWIntrinsic") != "0";
        bool avx512 = intrinsics && flags.Contains("avx512f") && Environment.GetEnvironmentVariable("DOTNET_EnableAVX512") != "0"
            && System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated;
        bool avx2 = intrinsics && flags.Contains("avx2") && flags.Contains("fma");
        GemmIsa expected = avx512 ? GemmIsa.Avx512 : avx2 ? GemmIsa.Avx2 : GemmIsa.Scalar;
        Assert.Equal(expected, new ManagedGemm().Isa);
    }

    [Theory]
    [MemberData(nameof(Isas))]
    public void Zero_k_clears_or_keeps_c(GemmIsa isa)
    {
        var gemm = new ManagedGemm(1, isa);
        float[] c = [1f, 2f, 3f, 4f, TestUtil.Canary];
        gemm.Multiply(2, 2, 0, [], 1, [], 2, false, c, 2, accumulate: true);
        Assert.Equal([1f, 2f, 3f, 4f, TestUtil.Canary], c);
        gemm.Multiply(2, 2, 0, [], 1, [], 2, false, c, 2);
        Assert.Equal([0f, 0f, 0f, 0f, TestUtil.Canary], c);
        gemm.Multiply(0, 0, 5, [], 5, [], 5, true, [], 1);
    }

    [Fact]
    public void Invalid_arguments_throw()
    {
        var gemm = new ManagedGemm();
        float[] a = new float[6];
        float[] b = new float[6];
        float[] c = new float[4];
        Assert.Throws<ArgumentOutOfRangeException>(() => gemm.Multiply(2, 2, 3, a, 2, b, 2, false, c, 2));
        Assert.Throws<ArgumentException>(() => gemm.Multiply(2, 2, 3, a, 3, b, 2, false, c.AsSpan(0, 3), 2));
        Assert.Throws<ArgumentException>(() => gemm.Multiply(2, 2, 3, a, 3, a, 3, true, a, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ManagedGemm(0));
    }

    // C is filled with random values (used when accumulating) and every float not inside the m×n view, the
    // ldc-gaps between rows and a tail after the last row, holds a canary that must survive.
    // With `round`, the oracle multiplies round(a) by round(b) (what a BF16 GEMM must compute).
    internal static void CheckAgainstReference(IGemm gemm, int m, int n, int k, bool transB, bool accumulate,
        Func<float, float>? round = null)
    {
        int lda = k + 3;
        int ldb = (transB ? k : n) + 5;
        int ldc = n + 2;
        int bRows = transB ? n : k;
        float[] a = TestUtil.Random(((m - 1) * lda) + k, (m * 31) + k);
        float[] b = TestUtil.Random(((bRows - 1) * ldb) + (transB ? k : n), (n * 17) + k + 1);
        int cLength = ((m - 1) * ldc) + n;
        float[] c0 = TestUtil.Random(cLength + TestUtil.CanaryLength, m + n + k);
        for (int i = 0; i < c0.Length; i++)
        {
            if (i >= cLength || i % ldc >= n)
            {
                c0[i] = TestUtil.Canary;
            }
        }

        float[] actual = (float[])c0.Clone();
        gemm.Multiply(m, n, k, a, lda, b, ldb, transB, actual, ldc, accumulate);
        if (round is not null)
        {
            a = Array.ConvertAll(a, x => round(x));
            b = Array.ConvertAll(b, x => round(x));
        }

        float[] expected = (float[])c0.Clone();
        Reference.MatMul(m, n, k, a, lda, b, ldb, transB, expected, ldc, accumulate);

        // Float32 summation of k products (in any order, blocked or with FMA) is within γ_k·Σ|a·b| ≈ k·ε·Σ|a·b| of
        // the exact sum (Higham, Accuracy and Stability, §3.1), plus ε for the final store of the reference.
        double eps = Math.ScaleB(1.0, -24);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double mag = accumulate ? Math.Abs(c0[(i * ldc) + j]) : 0.0;
                for (int p = 0; p < k; p++)
                {
                    float bv = transB ? b[(j * ldb) + p] : b[(p * ldb) + j];
                    mag += Math.Abs((double)a[(i * lda) + p] * bv);
                }

                double tol = ((k + 2) * eps * mag) + 1e-30;
                double e = expected[(i * ldc) + j];
                double got = actual[(i * ldc) + j];
                Assert.True(Math.Abs(got - e) <= tol,
                    $"{gemm.Name} m={m} n={n} k={k} transB={transB} acc={accumulate}: C[{i},{j}] = {got:R}, expected {e:R} (tol {tol:E2})");
            }
        }

        for (int i = 0; i < actual.Length; i++)
        {
            if (i >= cLength || i % ldc >= n)
            {
                Assert.True(actual[i] == TestUtil.Canary,
                    $"{gemm.Name} m={m} n={n} k={k}: canary at {i} (row {i / ldc}, col {i % ldc}) overwritten with {actual[i]}");
            }
        }
    }

    // An IGemm that keeps the interface's default Prepare.
    // An IGemm with no overrides: the interface defaults (also HalfWeightTests').
    internal sealed class NoPrepareGemm : IGemm
    {
        public string Name => "none";

        public int Threads => 1;

        public void Multiply(int m, int n, int k, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
            bool transB, Span<float> c, int ldc, bool accumulate = false) => throw new NotSupportedException();
    }
}
