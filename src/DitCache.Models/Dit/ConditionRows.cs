using System;
using System.Diagnostics.CodeAnalysis;

namespace DitCache.Models;

/// <summary>
/// The distinct (timestep, label) rows of a forward's batch. c and every adaLN modulation depend on (t, y) alone, so
/// the conditioning path runs on these U ≤ B rows, in order of first appearance, and <see cref="Expand"/> copies its
/// results out to the B batch rows: with CFG every null-label row of a step is the same row, so 2N rows of N classes
/// need at most N + 1. Also holds the run's <see cref="PreparedConditioning"/> table, if any, and where each distinct
/// row sits in it. Allocated once per run state.
/// </summary>
internal sealed class ConditionRows(int batch)
{
    private readonly int[] _distinctOf = new int[batch];                            // batch row -> distinct row (B)

    /// <summary>Distinct rows U of the current forward.</summary>
    public int Count { get; private set; }

    /// <summary>Timestep of each distinct row (U).</summary>
    public float[] Timesteps { get; } = new float[batch];

    /// <summary>Label of each distinct row (U).</summary>
    public int[] Labels { get; } = new int[batch];

    /// <summary>The run's conditioning computed ahead (<see cref="DitModel.PrepareConditioning"/>), or null.</summary>
    public PreparedConditioning? Prepared { get; set; }

    /// <summary>Row of each distinct (t, y) in <see cref="Prepared"/> (U), valid when <see cref="UsePrepared"/>.</summary>
    public int[] PreparedRow { get; } = new int[batch];

    /// <summary>Whether the current forward takes its conditioning from <see cref="Prepared"/>.</summary>
    public bool UsePrepared { get; private set; }

    /// <summary>Finds the distinct rows of a batch (timesteps matched by their bits); returns U.</summary>
    public int Find(ReadOnlySpan<float> timesteps, ReadOnlySpan<int> labels)
    {
        int u = 0;
        for (int i = 0; i < _distinctOf.Length; i++)
        {
            int bits = BitConverter.SingleToInt32Bits(timesteps[i]), j = 0;
            while (j < u && (BitConverter.SingleToInt32Bits(Timesteps[j]) != bits || Labels[j] != labels[i]))
            {
                j++;
            }

            if (j == u)
            {
                Timesteps[u] = timesteps[i];
                Labels[u] = labels[i];
                u++;
            }

            _distinctOf[i] = j;
        }

        Count = u;
        return u;
    }

    /// <summary>
    /// Decides whether this forward uses the prepared table: when <paramref name="allowed"/> and every distinct row
    /// is in it (filling <see cref="PreparedRow"/>).
    /// </summary>
    public bool TryUsePrepared(bool allowed, [NotNullWhen(true)] out PreparedConditioning? table)
    {
        table = Prepared;
        UsePrepared = allowed && table is not null
            && table.Lookup(Timesteps.AsSpan(0, Count), Labels.AsSpan(0, Count), PreparedRow);
        return UsePrepared;
    }

    /// <summary>
    /// Row i of <paramref name="all"/> (rows, width) ← the distinct row of batch row <paramref name="rows"/>[i], from
    /// <paramref name="distinct"/> (U, width): the conditioning of a pass over some rows of the batch.
    /// </summary>
    public void ExpandRows(ReadOnlySpan<float> distinct, Span<float> all, int width, ReadOnlySpan<int> rows)
    {
        for (int i = 0; i < rows.Length; i++)
        {
            distinct.Slice(_distinctOf[rows[i]] * width, width).CopyTo(all.Slice(i * width, width));
        }
    }

    /// <summary>Batch row i of <paramref name="all"/> (B, width) ← its distinct row of <paramref name="distinct"/> (U, width).</summary>
    public void Expand(ReadOnlySpan<float> distinct, Span<float> all, int width)
    {
        for (int i = 0; i < _distinctOf.Length; i++)
        {
            distinct.Slice(_distinctOf[i] * width, width).CopyTo(all.Slice(i * width, width));
        }
    }
}
