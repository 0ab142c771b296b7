using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Threading;

namespace DitCache.Tensors;

/// <summary>
/// Managed single-precision GEMM (see <see cref="IGemm"/> for the layouts), built the GotoBLAS/BLIS way: C is cut
/// into per-thread blocks; within a block, a kc×nc slab of op(B) in Nr-wide packed panels stays in L2 while a
/// register-blocked micro-kernel (<see cref="IGemmMicroKernel"/>) runs over the Mr×Nr tiles, reading Mr rows of A in
/// place (their kc floats stay in L1 across the slab). Edge tiles are computed into a small scratch tile (the B
/// panels are zero-padded, the last rows of a ragged m are copied zero-padded) and only their valid part is written,
/// so ragged m, n, k and any strides are handled without touching C out of range.
/// </summary>
/// <remarks>
/// <para>Weights: <see cref="Prepare"/> packs a constant B (a Linear weight) once; later calls with that array skip
/// packing B. With <see cref="GemmPrecision.BFloat16"/> the prepared panels hold BF16, half the bytes.</para>
/// <para>Threads: one level of parallelism, the shared <see cref="WorkerPool"/> over a tm×tn grid of C blocks chosen
/// to balance tiles (columns first: each thread then packs only its own part of B). A call made from inside another
/// parallel region (an attention head, say) runs on its own thread only. Pack buffers are per thread
/// (<see cref="ThreadStaticAttribute"/>, pinned, 64-byte aligned, sized once) and the pool's threads are persistent,
/// so steady-state calls allocate nothing.</para>
/// </remarks>
public sealed unsafe class ManagedGemm : IGemm
{
    // Cache blocking for Zen 4 (32 KiB L1d, 1 MiB L2 per core). k is cut into near-equal blocks of at most KcMaxF32
    // (float32 panels) or KcMax (BF16): k = 1152 → 1 block, 4608 → 4 × 1152, 512 → 1, so C is loaded and stored once
    // per block. The micro-kernel sweeps a kc×nc slab of packed B that fits SlabFloats (576 KiB) and so stays in L2,
    // with Mr rows of A (≤ 36 KiB) coming from L1/L2. KcMax 512 against 384 and 256 was worth 12 % and 15 % at the
    // shipped model's fc2 (k = 512); a single block of 1152 against 3 × 384 was worth 4–10 % (AVX2) and 1–4 %
    // (AVX-512) at the DiT-XL/2 k = 1152 layers, nothing measurable at k = 4608 (docs/benchmarks/gemm.md). BF16 keeps
    // 512: its rounded rows of A (McMax × kc) live in the pack buffer.
    private const int KcMax = 512;
    private const int KcMaxF32 = 1152;
    private const int SlabFloats = 384 * 384;

    // BF16 path: rows of A are rounded into the pack buffer this many at a time (a multiple of every Mr).
    private const int McMax = 96;

    // Widest Nr of any micro-kernel (sizes the per-thread BF16 panel scratch).
    private const int NrMax = 32;

    // Below this many multiply-adds one thread is faster than waking others.
    private const long ParallelThreshold = 1L << 17;

    [ThreadStatic]
    private static float[]? s_packBuffer;

    private readonly Lock _prepareGate = new();
    private PreparedWeight[] _prepared = [];

    /// <summary>
    /// Creates the GEMM with <paramref name="threads"/> worker threads, the given micro-kernel ISA and
    /// <paramref name="precision"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">threads is below 1.</exception>
    /// <exception cref="DitCacheException">The requested ISA is not supported by this machine.</exception>
    public ManagedGemm(int threads = 1, GemmIsa isa = GemmIsa.Auto, GemmPrecision precision = GemmPrecision.Float32)
    {
        KernelChecks.Positive(threads, nameof(threads));
        Isa = Resolve(isa);
        Threads = threads;
        Precision = precision;
        Name = "managed-" + Isa.ToString().ToLowerInvariant() + (precision == GemmPrecision.BFloat16 ? "-bf16" : "");
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public int Threads { get; }

    /// <summary>The micro-kernel ISA actually used (never <see cref="GemmIsa.Auto"/>).</summary>
    public GemmIsa Isa { get; }

    /// <summary>Float32, or both operands rounded to BF16 (<see cref="GemmPrecision"/>).</summary>
    public GemmPrecision Precision { get; }

    /// <summary>Whether this machine can run <paramref name="isa"/>.</summary>
    public static bool IsSupported(GemmIsa isa) => isa switch
    {
        GemmIsa.Auto or GemmIsa.Scalar => true,
        GemmIsa.Avx512 => Vector512.IsHardwareAccelerated && Avx512F.IsSupported,
        GemmIsa.Avx2 => Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported,
        _ => false,
    };

    /// <summary>
    /// Packs <paramref name="weight"/> (n×k, row-major: a Linear weight, used as op(B) = Bᵀ) once, in this GEMM's
    /// panel layout and precision; later <see cref="Multiply"/> calls with transB, this array as b, ldb = k and the
    /// same n and k use the packed copy instead of packing B again. The caller must not change the array afterwards.
    /// Costs one packed copy of the weight (n rounded up to the panel width, × k floats; half that for BF16), kept as
    /// long as this GEMM. Preparing the same array again does nothing.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">n or k is not positive.</exception>
    /// <exception cref="ArgumentException">The array holds fewer than n·k floats.</exception>
    public void Prepare(float[] weight, int n, int k) => Register(weight, n, k, inPlace: false, WeightPrecision.Float32);

    /// <summary>
    /// As <see cref="Prepare"/>, but packs <paramref name="weight"/> into its own array when the panels fit there
    /// (float32: n a multiple of the panel width, as in every DiT-XL/2 layer; BF16: n rounded up to the panel width
    /// at most 2n), so that the weight costs no second copy; otherwise keeps a packed copy as
    /// <see cref="Prepare"/> does. Afterwards the array holds panels, not the row-major weight: it is only a handle
    /// for <see cref="Multiply"/> with transB, ldb = k and the same n and k (<see cref="IGemm.PrepareInPlace(float[], int, int)"/>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">n or k is not positive.</exception>
    /// <exception cref="ArgumentException">The array holds fewer than n·k floats.</exception>
    public void PrepareInPlace(float[] weight, int n, int k) => Register(weight, n, k, inPlace: true, WeightPrecision.Float32);

    /// <summary>
    /// As <see cref="PrepareInPlace(float[], int, int)"/> for a weight stored at <paramref name="precision"/>: float32
    /// row-major, or a <see cref="HalfWeights"/> array (n·k 16-bit values, two to a float), which is packed in place
    /// into 16-bit panels (n a multiple of the panel width, as in every DiT-XL/2 Linear; otherwise into a packed
    /// copy) and multiplied with float32 A, each weight widened exactly in the micro-kernel. The array is afterwards
    /// only a handle for <see cref="Multiply"/> (transB, ldb = k, the same n and k), and the kernels that check a
    /// weight's length ask <see cref="WeightLength"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">n or k is not positive.</exception>
    /// <exception cref="ArgumentException">The array is too short for n·k values of the precision.</exception>
    /// <exception cref="NotSupportedException">float16 weights on a GEMM that rounds A to BF16 (<see cref="Supports"/>).</exception>
    public void PrepareInPlace(float[] weight, int n, int k, WeightPrecision precision)
    {
        if (!Supports(precision))
        {
            throw new NotSupportedException($"{Name} rounds weights to bf16 and cannot multiply {precision.Name()} weights; use --gemm managed");
        }

        Register(weight, n, k, inPlace: true, precision);
    }

    /// <summary>Float32 and bfloat16 weights always; float16 weights unless this GEMM rounds to BF16.</summary>
    public bool Supports(WeightPrecision precision) => precision != WeightPrecision.Float16 || Precision == GemmPrecision.Float32;

    /// <summary>
    /// Floats a transB operand <paramref name="weight"/> of n×k must hold: n·k, or for a 16-bit weight given to
    /// <see cref="PrepareInPlace(float[], int, int, WeightPrecision)"/> the length of its compact array.
    /// </summary>
    public long WeightLength(ReadOnlySpan<float> weight, int n, int k)
    {
        fixed (float* pw = weight)
        {
            PreparedWeight? p = weight.IsEmpty ? null : Find(pw, n, k);
            return p is { Compact: true } ? HalfWeights.CompactLength((long)n * k) : (long)n * k;
        }
    }

    /// <summary>Whether <paramref name="weight"/> was packed into its own array by <see cref="PrepareInPlace(float[], int, int)"/>.</summary>
    public bool IsPackedInPlace(float[] weight)
    {
        foreach (PreparedWeight p in Volatile.Read(ref _prepared))
        {
            if (ReferenceEquals(p.Weight, weight))
            {
                return p.InPlace;
            }
        }

        return false;
    }

    /// <summary>Float32 values this GEMM keeps beside the weights it was given (packed copies, padding included).</summary>
    public long PreparedCopyFloats
    {
        get
        {
            long total = 0;
            foreach (PreparedWeight p in Volatile.Read(ref _prepared))
            {
                total += p.CopyFloats;
            }

            return total;
        }
    }

    private void Register(float[] weight, int n, int k, bool inPlace, WeightPrecision source)
    {
        ArgumentNullException.ThrowIfNull(weight);
        KernelChecks.Positive(n, nameof(n));
        KernelChecks.Positive(k, nameof(k));
        bool compact = source != WeightPrecision.Float32;
        KernelChecks.Length(weight.Length, compact ? HalfWeights.CompactLength((long)n * k) : (long)n * k, nameof(weight),
            compact ? $"[n {n}, k {k}] at 16 bits, two to a float" : $"[n {n}, k {k}]");
        lock (_prepareGate)
        {
            foreach (PreparedWeight p in _prepared)
            {
                if (ReferenceEquals(p.Weight, weight) && p.N == n && p.K == k)
                {
                    return;
                }
            }

            int nr = Isa switch { GemmIsa.Avx512 => Avx512Kernel8x32.Nr, GemmIsa.Avx2 => Avx2Kernel6x16.Nr, _ => ScalarKernel4x8.Nr };
            WeightPrecision panels = source == WeightPrecision.Float16 ? WeightPrecision.Float16
                : source == WeightPrecision.BFloat16 || Precision == GemmPrecision.BFloat16 ? WeightPrecision.BFloat16
                : WeightPrecision.Float32;
            PreparedWeight packed = compact
                ? PreparedWeight.PackCompact(weight, n, k, nr, source)
                : inPlace && PreparedWeight.FitsInPlace(n, k, nr, panels)
                ? PreparedWeight.PackInPlace(weight, n, k, nr, panels)
                : PreparedWeight.Pack(weight, n, k, nr, panels);
            Volatile.Write(ref _prepared, [.. _prepared, packed]);
        }
    }

    /// <inheritdoc/>
    public void Multiply(int m, int n, int k, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, bool transB,
        Span<float> c, int ldc, bool accumulate = false) =>
        MultiplyCore(m, n, k, a, lda, b, ldb, transB, c, ldc, accumulate, default, GemmEpilogue.None);

    /// <summary>
    /// A Linear with its bias or bias + GELU done inside the GEMM's blocks, on each strip of Mr rows while it is in
    /// L1 and on the thread that computed it: <see cref="GemmEpilogue.Bias"/> writes the bias into the strip before
    /// its first k block and accumulates onto it (the arithmetic of a bias copy followed by an accumulating
    /// <see cref="Multiply"/>), <see cref="GemmEpilogue.BiasGeluTanh"/> applies <c>GELU_tanh(c + bias)</c> after its
    /// last k block (that of <see cref="Kernels.AddBiasGeluTanh"/> after <see cref="Multiply"/>). Same bits as the
    /// separate passes, for any thread count. <paramref name="bias"/> holds n floats. Shapes as <see cref="Multiply"/>
    /// with transB (a Linear weight).
    /// </summary>
    internal void MultiplyLinear(int m, int n, int k, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> w, int ldw,
        ReadOnlySpan<float> bias, Span<float> c, int ldc, GemmEpilogue epilogue)
    {
        Debug.Assert(epilogue != GemmEpilogue.None && bias.Length >= n && k > 0, "a Linear with a bias");
        MultiplyCore(m, n, k, a, lda, w, ldw, transB: true, c, ldc, accumulate: epilogue == GemmEpilogue.Bias, bias, epilogue);
    }

    private void MultiplyCore(int m, int n, int k, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, bool transB,
        Span<float> c, int ldc, bool accumulate, ReadOnlySpan<float> bias, GemmEpilogue epilogue)
    {
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        fixed (float* pbias = bias)
        {
            PreparedWeight? prepared = transB && ldb == k && !b.IsEmpty ? Find(pb, n, k) : null;   // kept alive by _prepared
            GemmChecks.Validate(m, n, k, a, lda, b, ldb, transB, c, ldc,
                prepared is { Compact: true } ? HalfWeights.CompactLength((long)n * k) : null);
            if (m == 0 || n == 0)
            {
                return;
            }

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

            float* panels = prepared is null ? null : prepared.InPlace ? pb : prepared.Panels;    // in place: b, pinned by fixed
            var job = new Job(m, n, k, pa, lda, pb, ldb, transB, pc, ldc, accumulate, panels, prepared is null ? 0 : prepared.PanelStride,
                pbias, epilogue);
            bool bf16 = Precision == GemmPrecision.BFloat16;
            WeightPrecision format = prepared?.Format ?? (bf16 ? WeightPrecision.BFloat16 : WeightPrecision.Float32);
            switch (Isa)
            {
                case GemmIsa.Avx512:
                    Dispatch<Avx512Kernel8x32>(job, format, bf16);
                    break;
                case GemmIsa.Avx2:
                    Dispatch<Avx2Kernel6x16>(job, format, bf16);
                    break;
                default:
                    Dispatch<ScalarKernel4x8>(job, format, bf16);
                    break;
            }
        }
    }

    // The B panel format of this call: float32; BF16 with A rounded too (managed-bf16); 16-bit weights with A as is.
    private void Dispatch<TKernel>(Job job, WeightPrecision format, bool roundA)
        where TKernel : IGemmMicroKernel
    {
        switch (format)
        {
            case WeightPrecision.BFloat16 when roundA:
                Run<TKernel, Bf16Panels>(job);
                break;
            case WeightPrecision.BFloat16:
                Run<TKernel, Bf16WeightPanels>(job);
                break;
            case WeightPrecision.Float16:
                Run<TKernel, F16WeightPanels>(job);
                break;
            default:
                Run<TKernel, Float32Panels>(job);
                break;
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

    // The prepared copy of the weight at b, if any. The address comparison is safe without pinning the registered
    // arrays: b is pinned by the caller's fixed, so no other array can sit at its address, and if the registered
    // array is b's array it cannot move while we look.
    private PreparedWeight? Find(float* b, int n, int k)
    {
        foreach (PreparedWeight p in Volatile.Read(ref _prepared))
        {
            if (p.N == n && p.K == k && Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(p.Weight)) == b)
            {
                return p;
            }
        }

        return null;
    }

    private void Run<TKernel, TFormat>(Job job)
        where TKernel : IGemmMicroKernel
        where TFormat : IPanelFormat
    {
        int mPanels = Ceil(job.M, TKernel.Mr);
        int nPanels = Ceil(job.N, TKernel.Nr);
        int workers = (long)job.M * job.N * job.K < ParallelThreshold ? 1 : Math.Min(Threads, mPanels * nPanels);
        if (workers == 1)
        {
            Block<TKernel, TFormat>(job, 0, job.M, 0, job.N);
            return;
        }

        EnsurePackBuffers();                    // the caller may get no block this time, and a block in a later call
        (int tm, int tn) = Grid(workers, mPanels, nPanels, TKernel.Mr, TKernel.Nr);
        var grid = new GridJob { Job = job, Tm = tm, Tn = tn, MPanels = mPanels, NPanels = nPanels };
        WorkerPool.Run(&GridBlock<TKernel, TFormat>, &grid, tm * tn, tm * tn);
    }

    // One block w of the tm×tn grid of C, on whichever pool thread picked it up.
    private static void GridBlock<TKernel, TFormat>(void* context, int w, int slot)
        where TKernel : IGemmMicroKernel
        where TFormat : IPanelFormat
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
            Block<TKernel, TFormat>(g.Job, m0, m1, n0, n1);
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
    private static void Block<TKernel, TFormat>(in Job job, int m0, int m1, int n0, int n1)
        where TKernel : IGemmMicroKernel
        where TFormat : IPanelFormat
    {
        int mr = TKernel.Mr;
        int nr = TKernel.Nr;
        int words = TFormat.IsHalf ? nr / 2 : nr;              // 32-bit words per k step of a packed B panel
        int kBlocks = Ceil(job.K, TFormat.RoundsA ? KcMax : KcMaxF32);
        int kc = Ceil(job.K, kBlocks);
        int nc = Math.Max(nr, (int)Math.Min(int.MaxValue, (long)SlabFloats * nr / ((long)kc * words)) / nr * nr);
        int mc = TFormat.RoundsA ? McMax : m1 - m0;
        Debug.Assert(job.Packed != null || !TFormat.IsHalf || TFormat.RoundsA, "16-bit weights are always prepared");
        float* bp = PackBuffers(out float* ap, out float* scratch);
        Debug.Assert((long)mr * kc <= McMax * KcMax, "the zero-padded last rows of A fit the A buffer");
        float* edge = stackalloc float[(mr * nr) + 16];
        edge = Align64(edge);
        for (int jc = n0; jc < n1; jc += nc)
        {
            int ncur = Math.Min(nc, n1 - jc);
            for (int pc = 0; pc < job.K; pc += kc)
            {
                int kcur = Math.Min(kc, job.K - pc);
                bool add = job.Accumulate || pc > 0;
                float* slab;
                nint panelStride;
                if (job.Packed != null)
                {
                    slab = job.Packed + ((nint)(jc / nr) * job.PackedStride) + ((nint)pc * words);
                    panelStride = job.PackedStride;
                }
                else
                {
                    slab = bp;
                    panelStride = (nint)kcur * words;
                    if (TFormat.IsHalf)
                    {
                        GemmPacking.PackBf16(job.B, job.Ldb, job.TransB, jc, ncur, pc, kcur, nr, (uint*)bp, panelStride, scratch);
                    }
                    else
                    {
                        GemmPacking.PackF32(job.B, job.Ldb, job.TransB, jc, ncur, pc, kcur, nr, bp, panelStride);
                    }
                }

                for (int ic = m0; ic < m1; ic += mc)
                {
                    int mcur = Math.Min(mc, m1 - ic);
                    float* a = job.A + (ic * job.Lda) + pc;
                    nint lda = job.Lda;
                    if (TFormat.RoundsA)
                    {
                        GemmPacking.RoundRowsBf16(a, lda, mcur, kcur, Ceil(mcur, mr) * mr, ap);
                        a = ap;
                        lda = kcur;
                    }

                    for (int ir = 0; ir < mcur; ir += mr)
                    {
                        int rows = Math.Min(mr, mcur - ir);
                        float* arow = a + (ir * lda);
                        nint ldr = lda;
                        if (rows < mr && !TFormat.RoundsA)
                        {
                            GemmPacking.CopyRows(arow, lda, rows, kcur, mr, ap);
                            arow = ap;
                            ldr = kcur;
                        }

                        float* crow = job.C + ((ic + ir) * job.Ldc) + jc;
                        if (job.Epilogue == GemmEpilogue.Bias && pc == 0)
                        {
                            for (int i = 0; i < rows; i++)
                            {
                                new ReadOnlySpan<float>(job.Bias + jc, ncur).CopyTo(new Span<float>(crow + (i * job.Ldc), ncur));  // C = bias
                            }
                        }

                        for (int jr = 0; jr < ncur; jr += nr)
                        {
                            int cols = Math.Min(nr, ncur - jr);
                            float* bpanel = slab + ((nint)(jr / nr) * panelStride);
                            if (rows == mr && cols == nr)
                            {
                                Kernel<TKernel, TFormat>(kcur, arow, ldr, bpanel, crow + jr, job.Ldc, add);
                            }
                            else
                            {
                                Kernel<TKernel, TFormat>(kcur, arow, ldr, bpanel, edge, nr, add: false);
                                MergeEdge(edge, nr, crow + jr, job.Ldc, rows, cols, add);
                            }
                        }

                        if (job.Epilogue == GemmEpilogue.BiasGeluTanh && pc + kcur == job.K)
                        {
                            for (int i = 0; i < rows; i++)
                            {
                                Kernels.AddBiasGeluTanhRow(crow + (i * job.Ldc), job.Bias + jc, ncur);   // C = GELU(C + bias)
                            }
                        }
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Kernel<TKernel, TFormat>(int kc, float* a, nint lda, float* b, float* c, nint ldc, bool add)
        where TKernel : IGemmMicroKernel
        where TFormat : IPanelFormat
    {
        if (TFormat.IsF16)
        {
            TKernel.RunF16(kc, a, lda, (uint*)b, c, ldc, add);
        }
        else if (TFormat.IsHalf)
        {
            TKernel.RunBf16(kc, a, lda, (uint*)b, c, ldc, add);
        }
        else
        {
            TKernel.Run(kc, a, lda, b, c, ldc, add);
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

    // The calling thread's pack buffers, 64-byte aligned, in one pinned array that lives as long as the thread:
    // the B slab (SlabFloats), the A rows (McMax × KcMax: BF16-rounded rows, or the zero-padded last rows of a ragged
    // m), and one float32 panel (KcMax × NrMax) that BF16 packing converts from.
    private static float* PackBuffers(out float* ap, out float* scratch)
    {
        float[] buffer = s_packBuffer ?? AllocatePackBuffer();
        float* bp = Align64((float*)Unsafe.AsPointer(ref buffer[0]));
        ap = Align64(bp + SlabFloats);
        scratch = Align64(ap + (McMax * KcMax));
        Debug.Assert(scratch + (KcMax * NrMax) <= (float*)Unsafe.AsPointer(ref buffer[0]) + buffer.Length);
        return bp;
    }

    /// <summary>
    /// Gives the calling thread its pack buffers now (about 850 KB, once per thread) rather than on its first GEMM
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
        float[] buffer = GC.AllocateUninitializedArray<float>(SlabFloats + (McMax * KcMax) + (KcMax * NrMax) + 64,
            pinned: true);
        s_packBuffer = buffer;
        return buffer;
    }

    private static float* Align64(float* p) => (float*)(((nint)p + 63) & ~(nint)63);

    private static int Ceil(int x, int y) => (x + y - 1) / y;

    // The B panels and what happens to A; a type parameter so that the JIT compiles each ISA × format without branches.
    private interface IPanelFormat
    {
        // 16-bit panels: nr/2 32-bit lanes per k step.
        static abstract bool IsHalf { get; }

        // float16 lanes (else bfloat16 when IsHalf).
        static abstract bool IsF16 { get; }

        // A rounded to BF16 too (managed-bf16), a block of rows at a time into the pack buffer.
        static abstract bool RoundsA { get; }
    }

    private readonly struct Float32Panels : IPanelFormat
    {
        public static bool IsHalf => false;

        public static bool IsF16 => false;

        public static bool RoundsA => false;
    }

    private readonly struct Bf16Panels : IPanelFormat
    {
        public static bool IsHalf => true;

        public static bool IsF16 => false;

        public static bool RoundsA => true;
    }

    private readonly struct Bf16WeightPanels : IPanelFormat
    {
        public static bool IsHalf => true;

        public static bool IsF16 => false;

        public static bool RoundsA => false;
    }

    private readonly struct F16WeightPanels : IPanelFormat
    {
        public static bool IsHalf => true;

        public static bool IsF16 => true;

        public static bool RoundsA => false;
    }

    // A weight packed once by Prepare: ceil(n / nr) panels of k steps × words, panel q at Panels + q·PanelStride.
    // Packed in place, the panels start at the weight array's first element (unaligned; the micro-kernels load
    // unaligned) and Panels is null: Multiply takes the address from its pinned b.
    private sealed class PreparedWeight
    {
        private readonly float[]? _storage;                     // pinned: Panels points into it (null in place)

        private PreparedWeight(float[] weight, int n, int k, float[]? storage, float* panels, nint panelStride,
            WeightPrecision format, bool compact)
        {
            Weight = weight;
            N = n;
            K = k;
            _storage = storage;
            Panels = panels;
            PanelStride = panelStride;
            Format = format;
            Compact = compact;
        }

        public float[] Weight { get; }

        public int N { get; }

        public int K { get; }

        public float* Panels { get; }

        public nint PanelStride { get; }

        // What the panels hold: float32, BF16 pairs or float16 pairs.
        public WeightPrecision Format { get; }

        // Weight was a HalfWeights array (n·k 16-bit values), not n·k floats.
        public bool Compact { get; }

        public bool InPlace => _storage is null;

        public long CopyFloats => _storage?.LongLength ?? 0;

        // Whether the packed panels (ceil(n / nr) × k steps × words, 32-bit words) fit in the n·k floats of the weight.
        public static bool FitsInPlace(int n, int k, int nr, WeightPrecision format)
        {
            int words = format == WeightPrecision.Float32 ? nr : nr / 2;
            return (long)Ceil(n, nr) * k * words <= (long)n * k;
        }

        public static PreparedWeight Pack(float[] weight, int n, int k, int nr, WeightPrecision format) =>
            Pack(weight, weight, n, k, nr, format, compact: false);

        // Packs the row-major float32 `values` into a new pinned array; `handle` is the array Multiply will be given.
        private static PreparedWeight Pack(float[] handle, float[] values, int n, int k, int nr, WeightPrecision format, bool compact)
        {
            int words = format == WeightPrecision.Float32 ? nr : nr / 2;
            nint stride = (nint)k * words;
            float[] storage = GC.AllocateUninitializedArray<float>((int)(Ceil(n, nr) * stride) + 16, pinned: true);
            float* panels = Align64((float*)Unsafe.AsPointer(ref storage[0]));
            float[] scratch = format == WeightPrecision.Float32 ? [] : new float[KcMax * nr];
            fixed (float* w = values)
            fixed (float* s = scratch)
            {
                PackPanels(w, n, k, nr, format, panels, stride, s);
            }

            return new PreparedWeight(handle, n, k, storage, panels, stride, format, compact);
        }

        // Panel by panel: the nr source rows of panel q are copied aside, then packed over the region they came from
        // (float32: the same n·k floats, [q·nr·k, (q+1)·nr·k)) or before it (BF16: half as many words), so no row is
        // overwritten before it is read.
        public static PreparedWeight PackInPlace(float[] weight, int n, int k, int nr, WeightPrecision format)
        {
            Debug.Assert(FitsInPlace(n, k, nr, format), "checked by the caller");
            int words = format == WeightPrecision.Float32 ? nr : nr / 2;
            nint stride = (nint)k * words;
            float[] rows = GC.AllocateUninitializedArray<float>(nr * k);
            float[] scratch = format == WeightPrecision.Float32 ? [] : new float[KcMax * nr];
            fixed (float* w = weight)
            fixed (float* r = rows)
            fixed (float* s = scratch)
            {
                for (int j0 = 0; j0 < n; j0 += nr)
                {
                    int valid = Math.Min(nr, n - j0);
                    new ReadOnlySpan<float>(w + ((nint)j0 * k), valid * k).CopyTo(new Span<float>(r, valid * k));
                    PackPanels(r, valid, k, nr, format, w + ((nint)(j0 / nr) * stride), stride, s);
                }
            }

            return new PreparedWeight(weight, n, k, null, null, stride, format, compact: false);
        }

        // A HalfWeights array (n·k values of `source`, row-major, two to a float) → 16-bit panels of the same format.
        // With n a multiple of nr the panels take exactly the array's n·k/2 words and are packed over it, panel q over
        // the words its own rows came from (widened aside first); otherwise into a new array, the compact one kept
        // only as the handle.
        public static PreparedWeight PackCompact(float[] weight, int n, int k, int nr, WeightPrecision source)
        {
            nint stride = (nint)k * (nr / 2);
            if (n % nr != 0)
            {
                float[] widened = GC.AllocateUninitializedArray<float>(n * k);
                WidenRows(weight, 0, n, k, source, widened);
                return Pack(weight, widened, n, k, nr, source, compact: true);
            }

            float[] rows = GC.AllocateUninitializedArray<float>(nr * k);
            float[] scratch = new float[KcMax * nr];
            fixed (float* w = weight)
            fixed (float* r = rows)
            fixed (float* s = scratch)
            {
                for (int j0 = 0; j0 < n; j0 += nr)
                {
                    WidenRows(weight, j0, nr, k, source, rows);
                    PackPanels(r, nr, k, nr, source, w + ((nint)(j0 / nr) * stride), stride, s);
                }
            }

            return new PreparedWeight(weight, n, k, null, null, stride, source, compact: true);
        }

        // Rows j0..j0+count of the compact n×k array → float32 rows (exact).
        private static void WidenRows(float[] compact, int j0, int count, int k, WeightPrecision source, float[] dst)
        {
            ReadOnlySpan<uint> words = MemoryMarshal.Cast<float, uint>(compact.AsSpan());
            long first = (long)j0 * k;
            int total = count * k;
            for (int i = 0; i < total; i++)
            {
                long index = first + i;
                uint word = words[(int)(index >> 1)];
                dst[i] = HalfWeights.Widen16((index & 1) == 0 ? word & 0xFFFFu : word >> 16, source);
            }
        }

        // The first `rows` rows of the n×k weight at w (row stride k) → panels at dst, k blocked by KcMax; 16-bit
        // panels go through `scratch` (KcMax·nr floats).
        private static void PackPanels(float* w, int rows, int k, int nr, WeightPrecision format, float* dst, nint stride, float* scratch)
        {
            int words = format == WeightPrecision.Float32 ? nr : nr / 2;
            for (int pc = 0; pc < k; pc += KcMax)
            {
                int kcur = Math.Min(KcMax, k - pc);
                switch (format)
                {
                    case WeightPrecision.BFloat16:
                        GemmPacking.PackBf16(w, k, transB: true, 0, rows, pc, kcur, nr, (uint*)dst + ((nint)pc * words), stride, scratch);
                        break;
                    case WeightPrecision.Float16:
                        GemmPacking.PackF16(w, k, transB: true, 0, rows, pc, kcur, nr, (uint*)dst + ((nint)pc * words), stride, scratch);
                        break;
                    default:
                        GemmPacking.PackF32(w, k, transB: true, 0, rows, pc, kcur, nr, dst + ((nint)pc * words), stride);
                        break;
                }
            }
        }
    }

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
        bool accumulate, float* packed, nint packedStride, float* bias = null, GemmEpilogue epilogue = GemmEpilogue.None)
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

        // B's prepared panels (null: pack B per call) and their stride.
        public float* Packed { get; } = packed;

        public nint PackedStride { get; } = packedStride;

        // The Linear's bias (n floats) and what to do with it (MultiplyLinear), or null and None.
        public float* Bias { get; } = bias;

        public GemmEpilogue Epilogue { get; } = epilogue;
    }
}
