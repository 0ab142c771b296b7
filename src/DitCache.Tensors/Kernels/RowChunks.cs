using System;

namespace DitCache.Tensors;

/// <summary>
/// How an element-wise pass over the rows of a matrix is shared among the worker pool's threads: contiguous chunks
/// of rows, a few per thread so that a thread that joins late still gets a share, and none at all (one chunk, run
/// on the caller) when the pass is too small to repay a region. Every row is computed by the same code whatever the
/// chunking, so the results do not depend on the thread count.
/// </summary>
internal static class RowChunks
{
    // Below this many floats a pass runs on the caller alone (a region's hand-over costs about a microsecond).
    private const long ParallelFloats = 1L << 14;

    // Chunks per thread: enough that a worker starting late balances, few enough that each is tens of microseconds.
    private const int ChunksPerThread = 4;

    /// <summary>Rows per chunk for <paramref name="rows"/> rows of <paramref name="rowFloats"/> floats on <paramref name="threads"/> threads.</summary>
    public static int RowsPerChunk(int rows, int rowFloats, int threads)
    {
        if (threads <= 1 || rows <= 1 || (long)rows * rowFloats < ParallelFloats)
        {
            return Math.Max(1, rows);
        }

        int chunks = Math.Min(rows, threads * ChunksPerThread);
        return (rows + chunks - 1) / chunks;
    }

    /// <summary>Chunks of <paramref name="rowsPerChunk"/> rows that cover <paramref name="rows"/> rows.</summary>
    public static int Count(int rows, int rowsPerChunk) => (rows + rowsPerChunk - 1) / rowsPerChunk;
}
