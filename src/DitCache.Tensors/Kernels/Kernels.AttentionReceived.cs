using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// The attention each token received, the score token-wise caches (ToCa, DuCa) rank tokens by: from attention maps
    /// <paramref name="probabilities"/> (batch, heads, tokens, tokens), as <see cref="AttentionWithProbabilities"/>
    /// leaves them, effectively computes <c>received[b, k] = Σ_q mean_h P[b, h, q, k]</c> into
    /// <paramref name="received"/> (batch, tokens). Each column sums over (head, query) rows in order, in float32,
    /// then divides by <paramref name="heads"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A span is too short for the sizes, or the spans overlap.</exception>
    public static void AttentionReceived(ReadOnlySpan<float> probabilities, Span<float> received, int batch, int heads, int tokens)
    {
        KernelChecks.NonNegative(batch, nameof(batch));
        KernelChecks.Positive(heads, nameof(heads));
        KernelChecks.NonNegative(tokens, nameof(tokens));
        KernelChecks.Length(probabilities.Length, (long)batch * heads * tokens * tokens, nameof(probabilities),
            $"(batch {batch}, heads {heads}, tokens {tokens}, tokens {tokens})");
        KernelChecks.Length(received.Length, (long)batch * tokens, nameof(received), $"(batch {batch}, tokens {tokens})");
        KernelChecks.Disjoint(probabilities, received, nameof(probabilities), nameof(received));
        int maps = heads * tokens * tokens;
        for (int b = 0; b < batch; b++)
        {
            Span<float> r = received.Slice(b * tokens, tokens);
            ReadOnlySpan<float> p = probabilities.Slice(b * maps, maps);
            r.Clear();
            for (int row = 0; row < heads * tokens; row++)
            {
                VectorMath.AddInPlace(r, p.Slice(row * tokens, tokens));                 // Σ over heads and queries
            }

            for (int k = 0; k < tokens; k++)
            {
                r[k] /= heads;                                                           // mean over heads
            }
        }
    }
}
