namespace DitCache.Tensors;

/// <summary>What <see cref="ManagedGemm"/> does with a Linear's bias inside its blocks (<c>MultiplyLinear</c>).</summary>
internal enum GemmEpilogue
{
    /// <summary>Nothing: a plain product.</summary>
    None,

    /// <summary>C = bias + A·op(B): the bias is written into each strip of C before its first k block.</summary>
    Bias,

    /// <summary>C = GELU_tanh(A·op(B) + bias) on each strip of C after its last k block.</summary>
    BiasGeluTanh,
}
