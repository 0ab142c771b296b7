using System;
using System.Collections.Generic;

namespace DitCache.Tensors;

/// <summary>
/// How a model's Linear weights are stored (<c>--weights</c>). Whatever the storage, products and sums are float32:
/// a half-precision weight is widened exactly to float32 inside the GEMM's micro-kernel, so only the rounding of the
/// weights themselves (once, at load) changes results. Activations are never rounded (unlike
/// <see cref="GemmPrecision.BFloat16"/>, which rounds both operands).
/// </summary>
public enum WeightPrecision
{
    /// <summary>float32, 4 bytes a value: the weights as the checkpoint has them.</summary>
    Float32,

    /// <summary>bfloat16 (8 exponent bits, 7 mantissa bits), 2 bytes a value: float32's range, ~3 significant digits.</summary>
    BFloat16,

    /// <summary>IEEE binary16 (5 exponent bits, 10 mantissa bits), 2 bytes a value: ±65504 at most, ~3.3 digits.</summary>
    Float16,
}

/// <summary>Names of <see cref="WeightPrecision"/> on the command line and in reports.</summary>
public static class WeightPrecisions
{
    /// <summary>The accepted names, in the order of <see cref="WeightPrecision"/>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["f32", "bf16", "f16"];

    /// <summary>The command-line name: f32, bf16 or f16.</summary>
    public static string Name(this WeightPrecision precision) => Names[(int)precision];

    /// <summary>Bytes one stored weight takes.</summary>
    public static int Bytes(this WeightPrecision precision) => precision == WeightPrecision.Float32 ? 4 : 2;

    /// <summary>Parses f32, bf16 or f16 (case-insensitive; float32, bfloat16 and float16 too).</summary>
    /// <exception cref="DitCacheException">Anything else (exit code 2), naming the accepted values.</exception>
    public static WeightPrecision Parse(string text, string flag = "--weights")
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.Trim().ToLowerInvariant() switch
        {
            "f32" or "float32" or "fp32" => WeightPrecision.Float32,
            "bf16" or "bfloat16" => WeightPrecision.BFloat16,
            "f16" or "float16" or "fp16" => WeightPrecision.Float16,
            _ => throw new DitCacheException($"{flag} '{text}' is not a weight precision; expected one of: {string.Join(", ", Names)}", 2),
        };
    }
}
