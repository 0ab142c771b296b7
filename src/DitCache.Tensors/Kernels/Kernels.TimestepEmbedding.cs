using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// DiT <c>TimestepEmbedder.timestep_embedding</c>: output (n, dim) = <c>[cos(t·f), sin(t·f)]</c> (cos first) with
    /// f_j = exp(−ln(maxPeriod)·j/half), half = dim/2, and a zero last column when dim is odd. The float32 operation
    /// order follows PyTorch's (<c>exp((float)(−ln maxPeriod)·j / half)</c>, then <c>t·f</c>, then cos/sin in float32) so
    /// the result matches torch to about one ulp of the argument.
    /// </summary>
    /// <exception cref="ArgumentException">dim is below 1 or output is shorter than n·dim.</exception>
    public static void TimestepEmbedding(ReadOnlySpan<float> t, Span<float> output, int dim, float maxPeriod = 10000f)
    {
        KernelChecks.Positive(dim, nameof(dim));
        if (!(maxPeriod > 0f))
        {
            throw new ArgumentOutOfRangeException(nameof(maxPeriod), maxPeriod, $"maxPeriod must be > 0 but is {maxPeriod}");
        }

        int n = t.Length;
        KernelChecks.Length(output.Length, (long)n * dim, nameof(output), $"(n {n}, dim {dim})");
        int half = dim / 2;
        float negLog = (float)-Math.Log(maxPeriod);
        for (int i = 0; i < n; i++)
        {
            Span<float> row = output.Slice(i * dim, dim);
            for (int j = 0; j < half; j++)
            {
                float freq = MathF.Exp(negLog * j / half);
                float arg = t[i] * freq;
                row[j] = MathF.Cos(arg);
                row[half + j] = MathF.Sin(arg);
            }

            if ((dim & 1) != 0)
            {
                row[dim - 1] = 0f;
            }
        }
    }
}
