using System;

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
