using System;
using System.Linq;

namespace DitCache.Tensors;

/// <summary>
/// A dense, contiguous, row-major float32 tensor of rank 0 to 6. No views, no strides: a kernel that needs a
/// slice takes a <see cref="Span{T}"/> of <see cref="Data"/> and explicit sizes.
/// </summary>
public sealed class Tensor
{
    /// <summary>Creates a tensor over an existing buffer; <paramref name="data"/> length must equal the shape's product.</summary>
    /// <exception cref="ArgumentException">The buffer length does not match the shape, or a dimension is negative.</exception>
    public Tensor(float[] data, params int[] shape)
    {
        long count = ElementCount(shape);
        if (data.Length != count)
        {
            throw new ArgumentException(
                $"buffer holds {data.Length} floats but shape [{string.Join(", ", shape)}] needs {count}", nameof(data));
        }

        Data = data;
        Shape = (int[])shape.Clone();
    }

    /// <summary>The elements, row-major.</summary>
    public float[] Data { get; }

    /// <summary>The dimensions, outermost first.</summary>
    public int[] Shape { get; }

    /// <summary>Number of elements.</summary>
    public int Length => Data.Length;

    /// <summary>Number of dimensions.</summary>
    public int Rank => Shape.Length;

    /// <summary>Dimension <paramref name="axis"/>; negative counts from the end.</summary>
    public int Dim(int axis) => Shape[axis < 0 ? Shape.Length + axis : axis];

    /// <summary>A zero-filled tensor.</summary>
    public static Tensor Zeros(params int[] shape) => new(new float[ElementCount(shape)], shape);

    /// <summary>Shape as text, e.g. <c>[2, 4, 32, 32]</c>.</summary>
    public string ShapeText => FormatShape(Shape);

    /// <summary>Formats a shape as <c>[a, b, c]</c>.</summary>
    public static string FormatShape(int[] shape) => "[" + string.Join(", ", shape) + "]";

    /// <summary>
    /// The first NaN or ±∞ of <see cref="Data"/> as text for an error message, e.g. <c>NaN at [0, 3, 1, 2]</c>, or
    /// null when every value is finite (<see cref="Kernels.IndexOfNonFinite"/>: one vectorised pass).
    /// </summary>
    public string? FirstNonFinite()
    {
        int flat = Kernels.IndexOfNonFinite(Data);
        if (flat < 0)
        {
            return null;
        }

        int[] index = new int[Shape.Length];
        int rest = flat;
        for (int d = Shape.Length - 1; d >= 0; d--)
        {
            index[d] = Shape[d] == 0 ? 0 : rest % Shape[d];
            rest = Shape[d] == 0 ? rest : rest / Shape[d];
        }

        float v = Data[flat];
        string kind = float.IsNaN(v) ? "NaN" : v > 0 ? "+Infinity" : "-Infinity";
        return $"{kind} at {FormatShape(index)}";
    }

    /// <summary>Whether this tensor's shape equals <paramref name="shape"/>.</summary>
    public bool HasShape(params int[] shape) => Shape.SequenceEqual(shape);

    /// <summary>Product of the dimensions, checked against overflow of a .NET array.</summary>
    /// <exception cref="ArgumentException">A dimension is negative or the product exceeds <see cref="Array.MaxLength"/>.</exception>
    public static long ElementCount(int[] shape)
    {
        long count = 1;
        foreach (int d in shape)
        {
            if (d < 0)
            {
                throw new ArgumentException($"shape {FormatShape(shape)} has a negative dimension", nameof(shape));
            }

            count *= d;
            if (count > Array.MaxLength)
            {
                throw new ArgumentException($"shape {FormatShape(shape)} has more elements than a .NET array can hold", nameof(shape));
            }
        }

        return count;
    }
}
