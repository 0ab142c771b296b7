using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace DitCache.Tensors;

/// <summary>
/// Managed single-precision GEMM (see <see cref="IGemm"/> for the layouts), built the GotoBLAS/BLIS way: C is cut
/// into per-thread blocks; within a block, a kc×nc slab of op(B) is packed into Nr-wide panels (kept in L2), an
/// mc×kc slab of A into Mr-tall panels, and a register-blocked micro-kernel (<see cref="IGemmMicroKernel"/>) runs
/// over the Mr×Nr tiles. Edge tiles are computed into a small scratch tile (the packers zero-pad A and B) and
/// only their valid part is written, so ragged m, n, k and any strides are handled without touching C out of range.
/// </summary>
/// <remarks>
/// Threads: one level of parallelism, the shared <see cref="WorkerPool"/> over a tm×tn grid of C blocks chosen to
/// balance tiles (columns first: each thread then packs only its own part of B, the larger operand for Linear
/// layers). A call made from inside another parallel region (an attention head, say) runs on its own thread only.
/// Pack buffers are per thread (<see cref="ThreadStaticAttribute"/>, pinned, 64-byte aligned, sized once) and the
/// pool's threads are persistent, so steady-state calls allocate nothing.
/// </remarks>
public sealed unsafe class ManagedGemm : IGemm
{
    // Cache blocking for Zen 4 (32 KiB L1d, 1 MiB L2 per core): one packed A micro-panel (Mr×Kc, 8 KiB for 8×256)
    // stays in L1 while the kernel sweeps the packed B slab (Kc×Nc ≤ 512 KiB) out of L2.
    private const int Kc = 256;
    private const int McMax = 96;
    private const int NcMax = 512;

    // Below this many multiply-adds one thread is faster than waking others.
    private const long ParallelThreshold = 1L << 17;

    [ThreadStatic]
    private static float[]? s_packBuffer;

    /// <summary>Creates the GEMM with <paramref name="threads"/> worker threads and the given micro-kernel ISA.</summary>
    /// <exception cref="ArgumentOutOfRangeException">threads is below 1.</exception>
    /// <exception cref="DitCacheException">The requested ISA is not supported by this machine.</exception>
    public ManagedGemm(int threads = 1, GemmIsa isa = GemmIsa.Auto)
    {
        KernelChecks.Positive(threads, nameof(threads));
        Isa = Resolve(isa);
        Threads = threads;
        Name = "managed-" + Isa.ToString().ToLowerInvariant();
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public int Threads { get; }

    /// <summary>The micro-kernel ISA actually used (never <see cref="GemmIsa.Auto"/>).</summary>
    public GemmIsa Isa { get; }

    /// <summary>Whether this machine can run <paramref name="isa"/>.</summary>
    public static bool IsSupported(GemmIsa isa) => isa switch
    {
        GemmIsa.Auto or GemmIsa.Scalar => true,
        GemmIsa.Avx512 => Vector512.IsHardwareAccelerated && Avx512F.IsSupported,
        GemmIsa.Avx2 => Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported,
        _ => false,
    };

    /// <inheritdoc/>
    public void Multiply(int m, int n, int k, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, bool transB,
        Span<float> c, int ldc, bool accumulate = false)
    {
        GemmChecks.Validate(m, n, k, a, lda, b, ldb, transB, c, ldc);
        if (m == 0 || n == 0)
        {
            return;
        }

        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            if (k == 0)
            {
                if (!accumulate)
                {
                    for (int i = 0; i < m; i++)
                    {
                        new Span<float>(pc + ((long)i * ldc), n).Clear();
                    }
                }

                return;
            }

            var job = new Job(m, n, k, pa, lda, pb, ldb, transB, pc, ldc, accumulate);
            switch (Isa)
            {
                case GemmIsa.Avx512:
                    Run<Avx512Kernel8x32>(job);
                    break;
                case GemmIsa.Avx2:
                    Run<Avx2Kernel6x16>(job);
                    break;
                default:
                    Run<ScalarKernel4x8>(job);
                    break;
            }
        }
    }

    internal static GemmIsa Resolve(GemmIsa isa)
    {
        if (isa == GemmIsa.Auto)
        {
            return IsSupported(GemmIsa.Avx512) ? GemmIsa.Avx512 : IsSupported(GemmIsa.Avx2) ? GemmIsa.Avx2 : GemmIsa.Scalar;
        }

        if (!IsSupported(isa))
        {
            throw new DitCacheException($"GEMM ISA '{isa}' is not supported on this machine; use GemmIsa.Auto", 2);
        }

        return isa;
    }

    private void Run<TKernel>(Job job)
        where TKernel : IGemmMicroKernel
    {
        int mPanels = Ceil(job.M, TKernel.Mr);
        int nPanels = Ceil(job.N, TKernel.Nr);
        int workers = (long)job.M * job.N * job.K < ParallelThreshold ? 1 : Math.Min(Threads, mPanels * nPanels);
        if (workers == 1)
        {
            Block<TKernel>(job, 0, job.M, 0, job.N);
            return;
        }

        EnsurePackBuffers();                    // the caller may get no block this time, and a block in a later call
        (int tm, int tn) = Grid(workers, mPanels, nPanels, TKernel.Mr, TKernel.Nr);
        var grid = new GridJob { Job = job, Tm = tm, Tn = tn, MPanels = mPanels, NPanels = nPanels };
        WorkerPool.Run(&GridBlock<TKernel>, &grid, tm * tn, tm * tn);
    }

    // One block w of the tm×tn grid of C, on whichever pool thread picked it up.
    private static void GridBlock<TKernel>(void* context, int w, int slot)
        where TKernel : IGemmMicroKernel
    {
        ref readonly GridJob g = ref *(GridJob*)context;
        int wm = w / g.Tn;
        int wn = w % g.Tn;
        int m0 = Math.Min(g.Job.M, (int)((long)g.MPanels * wm / g.Tm) * TKernel.Mr);
        int m1 = Math.Min(g.Job.M, (int)((long)g.MPanels * (wm + 1) / g.Tm) * TKernel.Mr);
        int n0 = Math.Min(g.Job.N, (int)((long)g.NPanels * wn / g.Tn) * TKernel.Nr);
        int n1 = Math.Min(g.Job.N, (int)((long)g.NPanels * (wn + 1) / g.Tn) * TKernel.Nr);
        if (m0 < m1 && n0 < n1)
        {
            Block<TKernel>(g.Job, m0, m1, n0, n1);
        }
    }

    // Picks tm×tn = workers (tn a divisor) minimising the largest block in tiles, plus a small charge for the
    // extra packing of B that every row split brings; ties go to more column blocks.
    private static (int Tm, int Tn) Grid(int workers, int mPanels, int nPanels, int mr, int nr)
    {
        int bestTm = 1;
        int bestTn = workers;
        double best = double.MaxValue;
        for (int tn = workers; tn >= 1; tn--)
        {
            if (workers % tn != 0)
            {
                continue;
            }

            int tm = workers / tn;
            double tiles = (double)Ceil(mPanels, tm) * mr * Ceil(nPanels, tn) * nr;
            double packB = (double)Ceil(nPanels, tn) * nr * 8;
            double cost = tiles + packB;
            if (cost < best)
            {
                best = cost;
                bestTm = tm;
                bestTn = tn;
            }
        }

        return (bestTm, bestTn);
    }

    // C[m0..m1, n0..n1] (+)= A[m0..m1, :]·op(B)[:, n0..n1] on the calling thread.
    private static void Block<TKernel>(in Job job, int m0, int m1, int n0, int n1)
        where TKernel : IGemmMicroKernel
    {
        int mr = TKernel.Mr;
        int nr = TKernel.Nr;
        int mc = McMax / mr * mr;
        int nc = NcMax / nr * nr;
        float* ap = PackBuffers(mc, nc, out float* bp);
        float* edge = stackalloc float[(mr * nr) + 16];
        edge = Align64(edge);
        for (int jc = n0; jc < n1; jc += nc)
        {
            int ncur = Math.Min(nc, n1 - jc);
            for (int pc = 0; pc < job.K; pc += Kc)
            {
                int kcur = Math.Min(Kc, job.K - pc);
                bool add = job.Accumulate || pc > 0;
                if (job.TransB)
                {
                    PackBTransposed(job.B, job.Ldb, jc, ncur, pc, kcur, nr, bp);
                }
                else
                {
                    PackB(job.B, job.Ldb, jc, ncur, pc, kcur, nr, bp);
                }

                for (int ic = m0; ic < m1; ic += mc)
                {
                    int mcur = Math.Min(mc, m1 - ic);
                    PackA(job.A, job.Lda, ic, mcur, pc, kcur, mr, ap);
                    for (int ir = 0; ir < mcur; ir += mr)
                    {
                        int rows = Math.Min(mr, mcur - ir);
                        float* apanel = ap + ((long)ir * kcur);
                        float* crow = job.C + ((long)(ic + ir) * job.Ldc) + jc;
                        for (int jr = 0; jr < ncur; jr += nr)
                        {
                            int cols = Math.Min(nr, ncur - jr);
                            float* bpanel = bp + ((long)jr * kcur);
                            if (rows == mr && cols == nr)
                            {
                                TKernel.Run(kcur, apanel, bpanel, crow + jr, job.Ldc, add);
                            }
                            else
                            {
                                TKernel.Run(kcur, apanel, bpanel, edge, nr, add: false);
                                MergeEdge(edge, nr, crow + jr, job.Ldc, rows, cols, add);
                            }
                        }
                    }
                }
            }
        }
    }

    private static void MergeEdge(float* tile, int nr, float* c, nint ldc, int rows, int cols, bool add)
    {
        for (int i = 0; i < rows; i++)
        {
            float* src = tile + (i * nr);
            float* dst = c + (i * ldc);
            if (add)
            {
                for (int j = 0; j < cols; j++)
                {
                    dst[j] += src[j];
                }
            }
            else
            {
                new ReadOnlySpan<float>(src, cols).CopyTo(new Span<float>(dst, cols));
            }
        }
    }

    // A[i0..i0+rows, p0..p0+kc] → Mr-tall panels, each kc steps of Mr floats (row-interleaved); rows past the end are 0.
    private static void PackA(float* a, nint lda, int i0, int rows, int p0, int kc, int mr, float* dst)
    {
        for (int ir = 0; ir < rows; ir += mr)
        {
            int valid = Math.Min(mr, rows - ir);
            float* panel = dst + ((long)ir * kc);
            for (int r = 0; r < valid; r++)
            {
                float* src = a + ((i0 + ir + r) * lda) + p0;
                float* d = panel + r;
                for (int p = 0; p < kc; p++)
                {
                    d[p * mr] = src[p];
                }
            }

            for (int r = valid; r < mr; r++)
            {
                float* d = panel + r;
                for (int p = 0; p < kc; p++)
                {
                    d[p * mr] = 0f;
                }
            }
        }
    }

    // B (k×n) rows p0..p0+kc, columns j0..j0+cols → Nr-wide panels, each kc steps of Nr floats; missing columns are 0.
    private static void PackB(float* b, nint ldb, int j0, int cols, int p0, int kc, int nr, float* dst)
    {
        for (int jr = 0; jr < cols; jr += nr)
        {
            int valid = Math.Min(nr, cols - jr);
            float* panel = dst + ((long)jr * kc);
            for (int p = 0; p < kc; p++)
            {
                float* src = b + ((p0 + p) * ldb) + j0 + jr;
                float* d = panel + (p * nr);
                if (valid == nr)
                {
                    new ReadOnlySpan<float>(src, nr).CopyTo(new Span<float>(d, nr));
                }
                else
                {
                    new ReadOnlySpan<float>(src, valid).CopyTo(new Span<float>(d, valid));
                    new Span<float>(d + valid, nr - valid).Clear();
                }
            }
        }
    }

    // Bᵀ where B is n×k (a Linear weight): rows j0..j0+cols of B, columns p0..p0+kc → the same panel layout as PackB.
    private static void PackBTransposed(float* b, nint ldb, int j0, int cols, int p0, int kc, int nr, float* dst)
    {
        for (int jr = 0; jr < cols; jr += nr)
        {
            int valid = Math.Min(nr, cols - jr);
            float* panel = dst + ((long)jr * kc);
            for (int j = 0; j < valid; j++)
            {
                float* src = b + ((j0 + jr + j) * ldb) + p0;
                float* d = panel + j;
                for (int p = 0; p < kc; p++)
                {
                    d[p * nr] = src[p];
                }
            }

            for (int j = valid; j < nr; j++)
            {
                float* d = panel + j;
                for (int p = 0; p < kc; p++)
                {
                    d[p * nr] = 0f;
                }
            }
        }
    }

    // The calling thread's pack buffers: A (mc×Kc) then B (Kc×nc), both 64-byte aligned, in one pinned array that
    // lives as long as the thread. Sized for the largest mc and nc of every micro-kernel, so it never grows.
    private static float* PackBuffers(int mc, int nc, out float* bp)
    {
        Debug.Assert(mc <= McMax && nc <= NcMax, "pack buffer sized for McMax x NcMax");
        float[] buffer = s_packBuffer ?? AllocatePackBuffer();
        float* ap = Align64((float*)Unsafe.AsPointer(ref buffer[0]));
        bp = Align64(ap + (mc * Kc));
        return ap;
    }

    /// <summary>
    /// Gives the calling thread its pack buffers now (about 620 KB, once per thread) rather than on its first GEMM
    /// block. The worker pool's threads call it when they start: with dynamic scheduling a worker's first block can
    /// come at any step of a run, and the step loop must not allocate.
    /// </summary>
    internal static void EnsurePackBuffers()
    {
        if (s_packBuffer is null)
        {
            AllocatePackBuffer();
        }
    }

    private static float[] AllocatePackBuffer()
    {
        float[] buffer = GC.AllocateUninitializedArray<float>((McMax * Kc) + (Kc * NcMax) + 32, pinned: true);
        s_packBuffer = buffer;
        return buffer;
    }

    private static float* Align64(float* p) => (float*)(((nint)p + 63) & ~(nint)63);

    private static int Ceil(int x, int y) => (x + y - 1) / y;

    // A multi-threaded call: the job and its tm×tn grid of C blocks, on the caller's stack while the pool runs it.
    private struct GridJob
    {
        public Job Job;
        public int Tm;
        public int Tn;
        public int MPanels;
        public int NPanels;
    }

    // Everything one call needs.
    private readonly struct Job(int m, int n, int k, float* a, int lda, float* b, int ldb, bool transB, float* c, int ldc,
        bool accumulate)
    {
        public int M { get; } = m;

        public int N { get; } = n;

        public int K { get; } = k;

        public float* A { get; } = a;

        public nint Lda { get; } = lda;

        public float* B { get; } = b;

        public nint Ldb { get; } = ldb;

        public bool TransB { get; } = transB;

        public float* C { get; } = c;

        public nint Ldc { get; } = ldc;

        public bool Accumulate { get; } = accumulate;
    }
}
