using System;
using System.Runtime.Intrinsics;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// Bias then GELU (tanh approximation, as <see cref="GeluTanh"/>) in one pass, in place over a (rows, cols)
    /// matrix: <c>x[r, :] = GELU_tanh(x[r, :] + bias)</c>. The epilogue of DiT's fc1 (see
    /// <see cref="LinearGeluTanh"/>): the GEMM writes x·wᵀ, this pass adds the bias and applies the activation. The
    /// rows are shared among <paramref name="threads"/> threads of the worker pool (the result does not depend on
    /// the thread count).
    /// </summary>
    /// <exception cref="ArgumentException">x is shorter than rows·cols, bias shorter than cols, or threads is not positive.</exception>
    public static unsafe void AddBiasGeluTanh(Span<float> x, ReadOnlySpan<float> bias, int rows, int cols, int threads = 1)
    {
        KernelChecks.NonNegative(rows, nameof(rows));
        KernelChecks.NonNegative(cols, nameof(cols));
        KernelChecks.Length(x.Length, (long)rows * cols, nameof(x), $"(rows {rows}, cols {cols})");
        KernelChecks.Length(bias.Length, cols, nameof(bias), $"cols {cols}");
        KernelChecks.Positive(threads, nameof(threads));
        if (rows == 0 || cols == 0)
        {
            return;
        }

        fixed (float* px = x)
        fixed (float* pb = bias)
        {
            var job = new ModulationJob { X = px, Mod = pb, Rows = rows, Dim = cols, ChunkRows = RowChunks.RowsPerChunk(rows, cols, threads) };
            WorkerPool.Run(&AddBiasGeluTanhChunk, &job, RowChunks.Count(rows, job.ChunkRows), threads);
        }
    }

    private static unsafe void AddBiasGeluTanhChunk(void* context, int chunk, int slot)
    {
        ref readonly ModulationJob job = ref *(ModulationJob*)context;
        int cols = job.Dim, r0 = chunk * job.ChunkRows, r1 = Math.Min(job.Rows, r0 + job.ChunkRows);
        for (int r = r0; r < r1; r++)
        {
            AddBiasGeluTanhRow(job.X + ((long)r * cols), job.Mod, cols);
        }
    }

    /// <summary>
    /// x[j] = GELU_tanh(x[j] + bias[j]) for j &lt; n: whole 512-bit vectors, then 256-bit ones, then scalars (the
    /// scalar exp is not the vector one). Applied to a piece of a row that starts at a multiple of 8 floats of the
    /// row and ends at one or at the row's end, it takes exactly the row's last n mod 8 elements down the scalar path
    /// and every other element through a vector path of the same element-wise arithmetic, as the whole row would;
    /// so the managed GEMM may apply it to its column blocks (fc1's fused epilogue) and give the same bits for any
    /// thread count.
    /// </summary>
    internal static unsafe void AddBiasGeluTanhRow(float* x, float* bias, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                GeluTanhOperator.Invoke(Vector512.Load(x + i) + Vector512.Load(bias + i)).Store(x + i);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                GeluTanhOperator.Invoke(Vector256.Load(x + i) + Vector256.Load(bias + i)).Store(x + i);
            }
        }

        for (; i < n; i++)
        {
            x[i] = GeluTanhOperator.Invoke(x[i] + bias[i]);
        }
    }
}
