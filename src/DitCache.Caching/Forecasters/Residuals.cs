using System;
using System.Numerics;

namespace DitCache.Caching;

/// <summary>
/// Element-wise helpers of the block-level caches (FBCache/DBCache, Δ-DiT, TeaCache, MagCache): residuals between a
/// block range's output and input, adding a stored residual back, and the relative L1 change they decide on.
/// Float32 data, sums in float64. Vectorised with <see cref="Vector{T}"/>; no allocation.
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

    /// <summary>
    /// <c>Σ|reference − current| / Σ|reference|</c> (the mean-abs ratio of FBCache, DBCache and TeaCache; the element
    /// count cancels), in float64; +∞ when the reference is all zeros and the two differ, 0 when both are.
    /// </summary>
    public static double RelativeL1(ReadOnlySpan<float> reference, ReadOnlySpan<float> current)
    {
        if (reference.Length != current.Length)
        {
            throw new ArgumentException($"relative L1 of {current.Length} floats against {reference.Length}");
        }

        double num = 0, den = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            num += Math.Abs((double)reference[i] - current[i]);
            den += Math.Abs((double)reference[i]);
        }

        return den > 0 ? num / den : (num > 0 ? double.PositiveInfinity : 0);
    }
}

/// <summary>
/// The whole-stack residual of TeaCache and MagCache: keeps the stack input of a computed step, stores
/// <c>R = last-block output − stack input</c> when the stack has run, and stands in for a skipped stack with
/// <c>x ← x + R</c>. Two (B, T, D) buffers, allocated once.
/// </summary>
public sealed class StackResidual
{
    private readonly float[] _input, _residual;

    /// <summary>Buffers for tensors of <paramref name="length"/> floats.</summary>
    public StackResidual(int length)
    {
        _input = new float[length];
        _residual = new float[length];
    }

    /// <summary>Whether a residual has been stored since the last <see cref="Clear"/>.</summary>
    public bool HasResidual { get; private set; }

    /// <summary>Bytes held.</summary>
    public long Bytes => 2L * _input.Length * sizeof(float);

    /// <summary>Forgets the stored residual (a new run).</summary>
    public void Clear() => HasResidual = false;

    /// <summary>Keeps the stack input of a step whose blocks will run.</summary>
    public void KeepInput(ReadOnlySpan<float> x) => x.CopyTo(_input);

    /// <summary>Stores R from the last block's output of the step whose input was kept.</summary>
    public void Record(ReadOnlySpan<float> output)
    {
        Residuals.Difference(output, _input, _residual);
        HasResidual = true;
    }

    /// <summary>x ← x + R.</summary>
    public void Apply(Span<float> x) => Residuals.Add(x, _residual);
}
