using System.Collections.Generic;

namespace DitCache.Tensors.IO;

/// <summary>The element types a checkpoint may store; every one is converted to float32 at load.</summary>
public enum StoredDType
{
    /// <summary>IEEE float32.</summary>
    F32,

    /// <summary>IEEE float16.</summary>
    F16,

    /// <summary>bfloat16 (the upper half of a float32).</summary>
    BF16,
}

/// <summary>
/// The named float32 tensors of one checkpoint file, its string metadata, and the dtype each tensor had on disk.
/// </summary>
/// <param name="Source">The file path (or another name for messages), e.g. <c>models/fmnist-dit.safetensors</c>.</param>
/// <param name="Tensors">The tensors, converted to float32.</param>
/// <param name="Metadata">safetensors <c>__metadata__</c>; empty for formats without it.</param>
/// <param name="SourceDTypes">The stored dtype of each tensor.</param>
public sealed record TensorFile(
    string Source,
    IReadOnlyDictionary<string, Tensor> Tensors,
    IReadOnlyDictionary<string, string> Metadata,
    IReadOnlyDictionary<string, StoredDType> SourceDTypes);
