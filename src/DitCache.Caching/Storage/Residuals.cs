using System;
using System.Numerics;

namespace DitCache.Caching;

/// <summary>
/// Element-wise helpers of the block-level caches (FBCache/DBCache, Δ-DiT, TeaCache, MagCache): residuals between a
/// block range's output and input, and adding a stored residual back (the relative L1 change they decide on is
/// <see cref="Tensors.RelativeError.L1"/>). Vectorised with <see cref="Vector{T}"/>; no allocation.
/// </summary>
public static class Residuals
{
    /// <summary><c>dst = a − b</c> element-wise.</summary>
    public static void Difference(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dst)
    {
        if (a.Length != b.Length || dst.Length != a.Length)
        {
            throw new ArgumentException($"residual of {a.Length} − {b.Length} floats into {dst.Length}; all three must match");
        }

        int i = 0, w = Vector<float>.Count;
        for (; i <= a.Length - w; i += w)
        {
            (new Vector<float>(a[i..]) - new Vector<float>(b[i..])).CopyTo(dst[i..]);
        }

        for (; i < a.Length; i++)
        {
            dst[i] = a[i] - b[i];
        }
    }

    /// <summary><c>x += r</c> element-wise.</summary>
    public static void Add(Span<float> x, ReadOnlySpan<float> r)
    {
        if (x.Length != r.Length)
        {
            throw new ArgumentException($"adding a residual of {r.Length} floats to a tensor of {x.Length}");
        }

        int i = 0, w = Vector<float>.Count;
        for (; i <= x.Length - w; i += w)
        {
            (new Vector<float>(x[i..]) + new Vector<float>(r[i..])).CopyTo(x[i..]);
        }

        for (; i < x.Length; i++)
        {
            x[i] += r[i];
        }
    }
}
