using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// DiT's <c>modulate(norm(x), shift, scale)</c> in one pass over the output: LayerNorm without affine parameters
    /// (biased variance, as <see cref="LayerNorm"/>) followed by adaLN modulation (as <see cref="Modulate"/>),
    /// <c>y[b, t, :] = ((x[b, t, :] − mean) / √(var + eps))·(1 + scale_b) + shift_b</c>. shift_b and scale_b are read
    /// from <paramref name="mod"/> at <paramref name="shiftOffset"/> / <paramref name="scaleOffset"/> of row b's
    /// <paramref name="modStride"/> floats. The arithmetic is that of LayerNorm then Modulate, so the result is the
    /// same to the bit; the normalised row is just never stored. <paramref name="y"/> may be <paramref name="x"/>.
    /// The rows are shared among <paramref name="threads"/> threads of the worker pool (each row is computed the same
    /// way on any thread, so the result does not depend on the thread count).
    /// </summary>
    /// <exception cref="ArgumentException">A span is too short for the sizes and offsets, y partly overlaps x, or threads is not positive.</exception>
    public static unsafe void LayerNormModulate(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> mod, int modStride,
        int shiftOffset, int scaleOffset, int batch, int tokens, int dim, float eps = 1e-6f, int threads = 1)
    {
        CheckModulation(x.Length, modStride, batch, tokens, dim, nameof(x));
        CheckOffset(shiftOffset, modStride, dim, batch, mod.Length, nameof(shiftOffset));
        CheckOffset(scaleOffset, modStride, dim, batch, mod.Length, nameof(scaleOffset));
        KernelChecks.Length(y.Length, (long)batch * tokens * dim, nameof(y), $"(batch {batch}, tokens {tokens}, dim {dim})");
        KernelChecks.SameOrDisjoint(x, y, nameof(x), nameof(y));
        KernelChecks.Positive(threads, nameof(threads));
        int rows = batch * tokens;
        if (dim == 0 || rows == 0)
        {
            return;
        }

        fixed (float* px = x)
        fixed (float* py = y)
        fixed (float* pmod = mod)
        {
            var job = new ModulationJob
            {
                X = px,
                Y = py,
                Mod = pmod,
                ModStride = modStride,
                FirstOffset = shiftOffset,
                SecondOffset = scaleOffset,
                Rows = rows,
                Tokens = tokens,
                Dim = dim,
                Eps = eps,
                ChunkRows = RowChunks.RowsPerChunk(rows, dim, threads),
            };
            WorkerPool.Run(&LayerNormModulateChunk, &job, RowChunks.Count(rows, job.ChunkRows), threads);
        }
    }

    // The rows of chunk `chunk`: mean and variance in two passes, as LayerNorm, then the fused normalise-modulate.
    private static unsafe void LayerNormModulateChunk(void* context, int chunk, int slot)
    {
        ref readonly ModulationJob job = ref *(ModulationJob*)context;
        int dim = job.Dim, r0 = chunk * job.ChunkRows, r1 = Math.Min(job.Rows, r0 + job.ChunkRows);
        for (int r = r0; r < r1; r++)
        {
            float* modRow = job.Mod + ((long)(r / job.Tokens) * job.ModStride);
            var row = new ReadOnlySpan<float>(job.X + ((long)r * dim), dim);
            float mean = VectorMath.Sum(row) / dim;                                       // two passes, as LayerNorm
            float variance = VectorMath.SumSquaredDeviations(row, mean) / dim;
            float inv = 1f / MathF.Sqrt(variance + job.Eps);
            NormalizeModulate(row, new Span<float>(job.Y + ((long)r * dim), dim), mean, inv,
                new ReadOnlySpan<float>(modRow + job.FirstOffset, dim), new ReadOnlySpan<float>(modRow + job.SecondOffset, dim));
        }
    }

    // An element-wise pass over (rows, dim) that reads one or two dim-long vectors of row r / tokens's modulation.
    private unsafe struct ModulationJob
    {
        public float* X;
        public float* Y;
        public float* Mod;
        public int ModStride;
        public int FirstOffset;
        public int SecondOffset;
        public int Rows;
        public int Tokens;
        public int Dim;
        public float Eps;
        public int ChunkRows;
    }

    // y[i] = fma((x[i] − mean)·inv, 1 + scale[i], shift[i]): VectorMath.ShiftScale then VectorMath.Modulate, fused.
    private static void NormalizeModulate(ReadOnlySpan<float> x, Span<float> y, float mean, float inv,
        ReadOnlySpan<float> shift, ReadOnlySpan<float> scale)
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        ref float sh = ref MemoryMarshal.GetReference(shift);
        ref float sc = ref MemoryMarshal.GetReference(scale);
        int n = x.Length;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> m = Vector512.Create(mean);
            Vector512<float> r = Vector512.Create(inv);
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                Vector512<float> h = (Vector512.LoadUnsafe(ref xs, (nuint)i) - m) * r;
                Vector512<float> s = Vector512<float>.One + Vector512.LoadUnsafe(ref sc, (nuint)i);
                Vector512.FusedMultiplyAdd(h, s, Vector512.LoadUnsafe(ref sh, (nuint)i)).StoreUnsafe(ref ys, (nuint)i);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> m = Vector256.Create(mean);
            Vector256<float> r = Vector256.Create(inv);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                Vector256<float> h = (Vector256.LoadUnsafe(ref xs, (nuint)i) - m) * r;
                Vector256<float> s = Vector256<float>.One + Vector256.LoadUnsafe(ref sc, (nuint)i);
                Vector256.FusedMultiplyAdd(h, s, Vector256.LoadUnsafe(ref sh, (nuint)i)).StoreUnsafe(ref ys, (nuint)i);
            }
        }

        for (; i < n; i++)
        {
            float h = (Unsafe.Add(ref xs, i) - mean) * inv;
            Unsafe.Add(ref ys, i) = MathF.FusedMultiplyAdd(h, 1f + Unsafe.Add(ref sc, i), Unsafe.Add(ref sh, i));
        }
    }
}
