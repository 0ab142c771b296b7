using System;
using DitCache.Tensors;

namespace DitCache.Models;

/// <summary>
/// The conditioning of every (timestep, label) pair of a run, computed ahead of its step loop by
/// <see cref="DitModel.PrepareConditioning"/>: per pair c (D), SiLU(c) (D), each block's adaLN modulation (6D) and the
/// final layer's (2D). Pairs are stored timestep-major in the order given.
/// </summary>
/// <remarks>
/// The table trades memory for weight streams: each Linear of the conditioning path runs once over all pairs instead
/// of once per step, and on a cached step those streams are most of the work (DiT-S/2's adaLN weights are 42 MB).
/// </remarks>
internal sealed class PreparedConditioning
{
    private readonly int _d, _depth;
    private readonly float[][] _modulation;                                                                            // [layer] (R, 6D) for blocks, (R, 2D) for layer = depth (final)

    /// <summary>
    /// Computes the table for every pair of <paramref name="timesteps"/> × <paramref name="labels"/> (labels already
    /// checked); null when there are no pairs or the table would exceed <paramref name="maxBytes"/>.
    /// </summary>
    public static PreparedConditioning? TryCompute(DitWeights w, IGemm gemm, ReadOnlySpan<float> timesteps,
        ReadOnlySpan<int> labels, long maxBytes)
    {
        DitConfig c = w.Config;
        int d = c.Hidden, freq = DitWeights.TimeFrequencyDim;
        long rows = (long)timesteps.Length * labels.Length;
        long bytes = rows * (2L * d + (c.Depth * 6L * d) + (2L * d)) * sizeof(float);
        if (rows == 0 || bytes > maxBytes)
        {
            return null;
        }

        var table = new PreparedConditioning(timesteps, labels, d, c.Depth);
        int r = table.Rows;
        var tf = new float[r * freq];
        var hidden = new float[r * d];
        Kernels.TimestepEmbedding(table.Timesteps, tf, freq);                                                          // (R, 256)
        Kernels.Linear(gemm, tf, w.TimeMlp0.W, w.TimeMlp0.B, hidden, r, freq, d);                                      // (R, D)
        Kernels.Silu(hidden, hidden);
        Kernels.Linear(gemm, hidden, w.TimeMlp2.W, w.TimeMlp2.B, table.CAll, r, d, d);                                 // (R, D) t_emb
        for (int i = 0; i < r; i++)
        {
            Kernels.AddBias(table.CAll.AsSpan(i * d, d), w.LabelTable.AsSpan(table.Labels[i] * d, d), 1, d);           // += table[y]
        }

        Kernels.Silu(table.CAll, table.SiluCAll);                                                                      // (R, D)
        for (int l = 0; l < c.Depth; l++)
        {
            LinearWeights adaLn = w.Blocks[l].AdaLn;
            Kernels.Linear(gemm, table.SiluCAll, adaLn.W, adaLn.B, table.ModulationAll(l), r, d, 6 * d);               // (R, 6D)
        }

        Kernels.Linear(gemm, table.SiluCAll, w.FinalAdaLn.W, w.FinalAdaLn.B, table.ModulationAll(c.Depth), r, d, 2 * d); // (R, 2D)
        return table;
    }

    private PreparedConditioning(ReadOnlySpan<float> timesteps, ReadOnlySpan<int> labels, int hidden, int depth)
    {
        _d = hidden;
        _depth = depth;
        Rows = timesteps.Length * labels.Length;
        Timesteps = new float[Rows];
        Labels = new int[Rows];
        for (int i = 0; i < timesteps.Length; i++)
        {
            for (int j = 0; j < labels.Length; j++)
            {
                Timesteps[(i * labels.Length) + j] = timesteps[i];
                Labels[(i * labels.Length) + j] = labels[j];
            }
        }

        CAll = new float[Rows * hidden];
        SiluCAll = new float[Rows * hidden];
        _modulation = new float[depth + 1][];
        for (int l = 0; l < depth; l++)
        {
            _modulation[l] = new float[Rows * 6 * hidden];
        }

        _modulation[depth] = new float[Rows * 2 * hidden];
    }

    /// <summary>Number of (t, y) pairs R.</summary>
    public int Rows { get; }

    /// <summary>Timestep of each pair (R).</summary>
    public float[] Timesteps { get; }

    /// <summary>Label of each pair (R).</summary>
    public int[] Labels { get; }

    /// <summary>c of every pair (R, D).</summary>
    public float[] CAll { get; }

    /// <summary>SiLU(c) of every pair (R, D).</summary>
    public float[] SiluCAll { get; }

    /// <summary>The modulation table of a block (R, 6D), or of the final layer for <paramref name="layer"/> = depth (R, 2D).</summary>
    public float[] ModulationAll(int layer) => _modulation[layer];

    public ReadOnlySpan<float> C(int row) => CAll.AsSpan(row * _d, _d);

    public ReadOnlySpan<float> SiluC(int row) => SiluCAll.AsSpan(row * _d, _d);

    public ReadOnlySpan<float> Modulation(int layer, int row)
    {
        int width = (layer == _depth ? 2 : 6) * _d;
        return _modulation[layer].AsSpan(row * width, width);
    }

    /// <summary>
    /// The row of each (t, y) pair into <paramref name="rows"/>; false when some pair is not in the table. Matches
    /// timesteps by their bits. No allocation.
    /// </summary>
    public bool Lookup(ReadOnlySpan<float> timesteps, ReadOnlySpan<int> labels, Span<int> rows)
    {
        for (int i = 0; i < timesteps.Length; i++)
        {
            int bits = BitConverter.SingleToInt32Bits(timesteps[i]), found = -1;
            for (int r = 0; r < Rows; r++)
            {
                if (Labels[r] == labels[i] && BitConverter.SingleToInt32Bits(Timesteps[r]) == bits)
                {
                    found = r;
                    break;
                }
            }

            if (found < 0)
            {
                return false;
            }

            rows[i] = found;
        }

        return true;
    }
}
