using System;
using System.Runtime.InteropServices;

namespace DitCache.Tensors;

/// <summary>
/// <see cref="IGemm"/> over OpenBLAS's <c>cblas_sgemm</c> from <c>libopenblas.so.0</c> (Debian
/// <c>libopenblas0-pthread</c>), loaded at run time with <see cref="NativeLibrary.TryLoad(string, out IntPtr)"/> so that
/// the engine still runs where it is absent.
/// </summary>
public sealed unsafe class OpenBlasGemm : IGemm
{
    private const string LibraryName = "libopenblas.so.0";
    private const int CblasRowMajor = 101;
    private const int CblasNoTrans = 111;
    private const int CblasTrans = 112;

    private static readonly Lazy<Api?> s_api = new(LoadApi);

    private readonly Api _api;

    /// <summary>Binds OpenBLAS and makes it use <paramref name="threads"/> threads per call.</summary>
    /// <exception cref="DitCacheException">libopenblas.so.0 cannot be loaded (the message says how to install it).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threads"/> is below 1.</exception>
    public OpenBlasGemm(int threads = 1)
    {
        KernelChecks.Positive(threads, nameof(threads));
        _api = s_api.Value ?? throw new DitCacheException(
            $"GEMM backend 'openblas' needs {LibraryName}, which could not be loaded; install it with " +
            "'sudo apt-get install -y libopenblas0-pthread' or use --gemm managed", 2);
        Threads = threads;
    }

    /// <summary>Whether libopenblas.so.0 with <c>cblas_sgemm</c> can be loaded on this machine.</summary>
    public static bool IsAvailable => s_api.Value is not null;

    /// <inheritdoc/>
    public string Name => "openblas";

    /// <inheritdoc/>
    public int Threads { get; }

    /// <inheritdoc/>
    public void Multiply(int m, int n, int k, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, bool transB,
        Span<float> c, int ldc, bool accumulate = false)
    {
        GemmChecks.Validate(m, n, k, a, lda, b, ldb, transB, c, ldc);
        if (m == 0 || n == 0)
        {
            return;
        }

        // OpenBLAS keeps one global thread count; set it per call so two instances with different counts coexist.
        _api.SetNumThreads(Threads);
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            _api.Sgemm(CblasRowMajor, CblasNoTrans, transB ? CblasTrans : CblasNoTrans, m, n, k, 1f, pa, lda, pb, ldb,
                accumulate ? 1f : 0f, pc, ldc);
        }
    }

    private static Api? LoadApi()
    {
        if (!NativeLibrary.TryLoad(LibraryName, out IntPtr handle))
        {
            return null;
        }

        if (!NativeLibrary.TryGetExport(handle, "cblas_sgemm", out IntPtr sgemm)
            || !NativeLibrary.TryGetExport(handle, "openblas_set_num_threads", out IntPtr setThreads))
        {
            return null;
        }

        return new Api(
            (delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)sgemm,
            (delegate* unmanaged<int, void>)setThreads);
    }

    private sealed class Api(
        delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> sgemm,
        delegate* unmanaged<int, void> setNumThreads)
    {
        public void Sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, float* a, int lda, float* b,
            int ldb, float beta, float* c, int ldc) => sgemm(order, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

        public void SetNumThreads(int threads) => setNumThreads(threads);
    }
}
