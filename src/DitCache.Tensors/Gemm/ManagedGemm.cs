using System;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Threading.Tasks;

namespace DitCache.Tensors;

/// <summary>Managed single-precision GEMM; see <see cref="IGemm"/> for the layouts.</summary>
public sealed unsafe class ManagedGemm : IGemm
{
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
            nint ia = (nint)pa;
            nint ib = (nint)pb;
            nint ic = (nint)pc;
            int workers = Math.Min(Threads, m);
            if (workers == 1)
            {
                Rows(0, m, n, k, pa, lda, pb, ldb, transB, pc, ldc, accumulate);
                return;
            }

            Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
            {
                int r0 = (int)((long)m * w / workers);
                int r1 = (int)((long)m * (w + 1) / workers);
                Rows(r0, r1, n, k, (float*)ia, lda, (float*)ib, ldb, transB, (float*)ic, ldc, accumulate);
            });
        }
    }

    private static GemmIsa Resolve(GemmIsa isa)
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

    // Straightforward row loop: correct for every layout; replaced by the packed kernel.
    private static void Rows(int r0, int r1, int n, int k, float* a, int lda, float* b, int ldb, bool transB, float* c,
        int ldc, bool accumulate)
    {
        for (int i = r0; i < r1; i++)
        {
            float* ci = c + ((long)i * ldc);
            float* ai = a + ((long)i * lda);
            if (!accumulate)
            {
                new Span<float>(ci, n).Clear();
            }

            if (transB)
            {
                for (int j = 0; j < n; j++)
                {
                    float* bj = b + ((long)j * ldb);
                    float s = 0f;
                    for (int p = 0; p < k; p++)
                    {
                        s += ai[p] * bj[p];
                    }

                    ci[j] += s;
                }
            }
            else
            {
                for (int p = 0; p < k; p++)
                {
                    float av = ai[p];
                    float* bp = b + ((long)p * ldb);
                    for (int j = 0; j < n; j++)
                    {
                        ci[j] += av * bp[j];
                    }
                }
            }
        }
    }
}
