using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// The L2 norm of every head's value vector, what the <c>kv-norm</c> token score of ToCa and DuCa ranks tokens by:
    /// from the attention projections <paramref name="qkv"/> (batch, tokens, 3·heads·headDim), laid out [q | k | v]
    /// with each part head-major (timm's <c>reshape(B, N, 3, H, d)</c>), writes
    /// <c>norms[b, h, t] = ‖v[b, t, h, :]‖₂</c> into <paramref name="norms"/> (batch, heads, tokens), the layout of
    /// the official <c>torch.norm(v, dim=-1)</c>. Sums of squares in float32.
    /// </summary>
    /// <exception cref="ArgumentException">A span is too short for the sizes, or the spans overlap.</exception>
    public static void ValueNorms(ReadOnlySpan<float> qkv, Span<float> norms, int batch, int tokens, int heads, int headDim)
    {
        KernelChecks.NonNegative(batch, nameof(batch));
        KernelChecks.NonNegative(tokens, nameof(tokens));
        KernelChecks.Positive(heads, nameof(heads));
        KernelChecks.Positive(headDim, nameof(headDim));
        int d = heads * headDim;
        KernelChecks.Length(qkv.Length, (long)batch * tokens * 3 * d, nameof(qkv),
            $"(batch {batch}, tokens {tokens}, 3 x heads {heads} x headDim {headDim})");
        KernelChecks.Length(norms.Length, (long)batch * heads * tokens, nameof(norms), $"(batch {batch}, heads {heads}, tokens {tokens})");
        KernelChecks.Disjoint(qkv, norms, nameof(qkv), nameof(norms));
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < tokens; t++)
            {
                ReadOnlySpan<float> v = qkv.Slice((((b * tokens) + t) * 3 * d) + (2 * d), d);             // (heads, headDim)
                for (int h = 0; h < heads; h++)
                {
                    float squares = VectorMath.SumSquaredDeviations(v.Slice(h * headDim, headDim), 0f);
                    norms[(((b * heads) + h) * tokens) + t] = MathF.Sqrt(squares);
                }
            }
        }
    }
}
