using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// adaLN-Zero gated residual: <c>x[b, t, :] += gate_b ⊙ y[b, t, :]</c> with gate_b =
    /// <c>mod[b·modStride + gateOffset ..][..dim]</c>, broadcast over tokens. The rows are shared among
    /// <paramref name="threads"/> threads of the worker pool (the result does not depend on the thread count).
    /// </summary>
    /// <exception cref="ArgumentException">A span is too short for the sizes and offset, y partly overlaps x, or threads is not positive.</exception>
    public static unsafe void GatedResidualAdd(Span<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> mod, int modStride,
        int gateOffset, int batch, int tokens, int dim, int threads = 1)
    {
        CheckModulation(x.Length, modStride, batch, tokens, dim, nameof(x));
        CheckOffset(gateOffset, modStride, dim, batch, mod.Length, nameof(gateOffset));
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
                FirstOffset = gateOffset,
                Rows = rows,
                Tokens = tokens,
                Dim = dim,
                ChunkRows = RowChunks.RowsPerChunk(rows, dim, threads),
            };
            WorkerPool.Run(&GatedResidualAddChunk, &job, RowChunks.Count(rows, job.ChunkRows), threads);
        }
    }

    // x (the job's X) += gate ⊙ y (the job's Y) over the rows of one chunk.
    private static unsafe void GatedResidualAddChunk(void* context, int chunk, int slot)
    {
        ref readonly ModulationJob job = ref *(ModulationJob*)context;
        int dim = job.Dim, r0 = chunk * job.ChunkRows, r1 = Math.Min(job.Rows, r0 + job.ChunkRows);
        for (int r = r0; r < r1; r++)
        {
            float* gate = job.Mod + ((long)(r / job.Tokens) * job.ModStride) + job.FirstOffset;
            VectorMath.MultiplyAddInPlace(new Span<float>(job.X + ((long)r * dim), dim), new ReadOnlySpan<float>(gate, dim),
                new ReadOnlySpan<float>(job.Y + ((long)r * dim), dim));
        }
    }
}
