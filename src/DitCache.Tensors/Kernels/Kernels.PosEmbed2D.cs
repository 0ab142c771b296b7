using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// MAE/DiT fixed 2-D sin-cos positional table, (grid·grid, dim): token r·grid + col gets
    /// <c>[sin(col·ω), cos(col·ω), sin(r·ω), cos(r·ω)]</c>, each dim/4 wide, with ω_j = 1/10000^(j/(dim/4)).
    /// The column fills the first half because MAE builds <c>meshgrid(grid_w, grid_h)</c> ("w goes first").
    /// Computed in double and cast to float, as numpy does before DiT copies it into a float32 parameter.
    /// </summary>
    /// <exception cref="ArgumentException">dim is not a positive multiple of 4, or output is shorter than grid²·dim.</exception>
    public static void PosEmbed2D(Span<float> output, int dim, int grid)
    {
        KernelChecks.NonNegative(grid, nameof(grid));
        if (dim <= 0 || dim % 4 != 0)
        {
            throw new ArgumentException($"pos_embed dim {dim} must be a positive multiple of 4", nameof(dim));
        }

        KernelChecks.Length(output.Length, (long)grid * grid * dim, nameof(output), $"(grid {grid}^2, dim {dim})");
        int quarter = dim / 4;
        Span<double> omega = quarter <= 1024 ? stackalloc double[quarter] : new double[quarter];
        for (int j = 0; j < quarter; j++)
        {
            omega[j] = 1.0 / Math.Pow(10000.0, j / (double)quarter);
        }

        for (int r = 0; r < grid; r++)
        {
            for (int col = 0; col < grid; col++)
            {
                Span<float> row = output.Slice(((r * grid) + col) * dim, dim);
                for (int j = 0; j < quarter; j++)
                {
                    double a = col * omega[j];
                    double b = r * omega[j];
                    row[j] = (float)Math.Sin(a);
                    row[quarter + j] = (float)Math.Cos(a);
                    row[(2 * quarter) + j] = (float)Math.Sin(b);
                    row[(3 * quarter) + j] = (float)Math.Cos(b);
                }
            }
        }
    }
}
