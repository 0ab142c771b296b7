using System;
using System.Runtime.CompilerServices;

namespace DitCache.Tensors;

/// <summary>Argument checks shared by the public kernels; each message names the argument and the sizes.</summary>
internal static class KernelChecks
{
    public static void NonNegative(int value, string name)
    {
        if (value < 0)
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be >= 0 but is {value}");
        }
    }

    public static void Positive(int value, string name)
    {
        if (value <= 0)
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be > 0 but is {value}");
        }
    }

    public static void Length(int actual, long needed, string name, string shape)
    {
        if (actual < needed)
        {
            throw new ArgumentException($"{name} holds {actual} floats but {shape} needs {needed}", name);
        }
    }

    /// <summary>
    /// As <see cref="Length(int, long, string, string)"/> with the shape as an interpolated string that is formatted
    /// only when the check fails: kernels run in the sampling loop, which must not allocate (CONTRIBUTING.md).
    /// </summary>
    public static void Length(int actual, long needed, string name,
        [InterpolatedStringHandlerArgument("actual", "needed")] ref ShapeHandler shape)
    {
        if (actual < needed)
        {
            throw new ArgumentException($"{name} holds {actual} floats but {shape.ToStringAndClear()} needs {needed}", name);
        }
    }

    /// <summary>Destination must be the source itself (in place) or not overlap it at all.</summary>
    public static void SameOrDisjoint(ReadOnlySpan<float> x, ReadOnlySpan<float> y, string xName, string yName)
    {
        if (x.Overlaps(y, out int offset) && offset != 0)
        {
            throw new ArgumentException(
                $"{yName} overlaps {xName} at offset {offset}; pass the same span for in-place use or disjoint spans", yName);
        }
    }

    public static void Disjoint(ReadOnlySpan<float> x, ReadOnlySpan<float> y, string xName, string yName)
    {
        if (x.Overlaps(y))
        {
            throw new ArgumentException($"{yName} overlaps {xName}; this kernel needs disjoint buffers", yName);
        }
    }
}

/// <summary>
/// Builds a shape description for <see cref="KernelChecks.Length(int, long, string, ref ShapeHandler)"/> only when
/// the length check is going to fail (the <c>Debug.Assert</c> message-handler pattern); otherwise every append is
/// skipped and nothing is allocated.
/// </summary>
[InterpolatedStringHandler]
internal ref struct ShapeHandler
{
    private DefaultInterpolatedStringHandler _inner;

    public ShapeHandler(int literalLength, int formattedCount, int actual, long needed, out bool shouldAppend)
    {
        shouldAppend = actual < needed;
        _inner = shouldAppend ? new DefaultInterpolatedStringHandler(literalLength, formattedCount) : default;
    }

    public void AppendLiteral(string value) => _inner.AppendLiteral(value);

    public void AppendFormatted<T>(T value) => _inner.AppendFormatted(value);

    public string ToStringAndClear() => _inner.ToStringAndClear();
}
