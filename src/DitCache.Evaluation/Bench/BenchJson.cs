using System;
using System.IO;
using System.Text.Json;
using System.Text.Json.Serialization;
using DitCache.Evaluation.Reports;
using DitCache.Tensors;

namespace DitCache.Evaluation.Bench;

/// <summary>
/// <c>results.json</c> of a benchmark: every measured number with the settings that produced it, read back to resume
/// an interrupted run. Image strips are stored as 8-bit pixels in base64 (what a PNG of them holds), infinities and
/// NaN as the JSON strings "Infinity" and "NaN".
/// </summary>
public static class BenchJson
{
    private static readonly JsonSerializerOptions s_options = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new StripConverter() },
    };

    /// <summary>Serialises <paramref name="results"/>.</summary>
    public static byte[] Serialize(BenchResults results) => JsonSerializer.SerializeToUtf8Bytes(results, s_options);

    /// <summary>Reads a results file written by <see cref="Serialize"/>.</summary>
    /// <exception cref="DitCacheException">The file is not a benchmark results file (exit code 1).</exception>
    public static BenchResults Load(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<BenchResults>(File.ReadAllBytes(path), s_options)
                ?? throw new DitCacheException($"{path}: empty results file; delete it or choose another --out", exitCode: 1);
        }
        catch (JsonException e)
        {
            throw new DitCacheException($"{path}: not a ditcache bench results file ({e.Message}); delete it or choose another --out", exitCode: 1);
        }
    }

    /// <summary>
    /// Checks that a loaded results file was made with the same settings, so resuming it compares like with like.
    /// </summary>
    /// <exception cref="DitCacheException">A setting differs (exit code 2), naming it and both values.</exception>
    public static void CheckResumable(BenchResults previous, BenchResults current, string path)
    {
        void Same<T>(string what, T a, T b)
        {
            if (!Equals(a, b))
            {
                throw new DitCacheException(
                    $"{path} was measured with {what} {a}, this run asks for {b}; resume with the same settings, or give another --out to start afresh",
                    exitCode: 2);
            }
        }

        Same("model", previous.Model, current.Model);
        Same("samples", previous.Samples, current.Samples);
        Same("classes", string.Join(',', previous.StripClasses), string.Join(',', current.StripClasses));
        Same("seed", previous.Seed, current.Seed);
        Same("sampler", previous.Sampler, current.Sampler);
        Same("threads", previous.Threads, current.Threads);
        Same("gemm", previous.Gemm, current.Gemm);
    }

    private sealed class StripConverter : JsonConverter<float[]>
    {
        public override float[] Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            byte[] pixels = Convert.FromBase64String(reader.GetString() ?? "");
            float[] values = new float[pixels.Length];
            for (int i = 0; i < pixels.Length; i++)
            {
                values[i] = (pixels[i] / 127.5f) - 1f;
            }

            return values;
        }

        public override void Write(Utf8JsonWriter writer, float[] value, JsonSerializerOptions options)
        {
            byte[] pixels = new byte[value.Length];
            for (int i = 0; i < value.Length; i++)
            {
                pixels[i] = Png.ToByte(value[i]);
            }

            writer.WriteBase64StringValue(pixels);
        }
    }
}
