using System;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DitCache.Evaluation.Metrics;
using DitCache.Evaluation.Quality;
using DitCache.Tensors;

namespace DitCache.Evaluation.Shards;

/// <summary>
/// The real images' feature statistics as a scored shard stores them (<c>reference.json</c>), so <c>ditcache merge</c>
/// computes the Frechet distance without the data set: mean and covariance as the base64 of their little-endian float64
/// bytes (exact, and compact for the FID Inception's 2048x2048 covariance: 45 MB where JSON numbers take 85 MB).
/// </summary>
/// <param name="Statistics">Mean and covariance of the real images' features.</param>
/// <param name="Floor">FD between the two halves of the real images; NaN for a reference read from a FID statistics file.</param>
/// <param name="Source">The data file the images came from.</param>
public sealed record ReferenceStatistics(FeatureStatistics Statistics, double Floor, string Source)
{
    /// <summary>The file's bytes for <paramref name="reference"/> (the same bytes for the same reference).</summary>
    public static byte[] Serialize(QualityReference reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        FeatureStatistics s = reference.Statistics;
        var node = new JsonObject
        {
            ["source"] = reference.Source,
            ["classes"] = new JsonArray([.. reference.Classes.Select(c => (JsonNode?)c)]),
            ["count"] = s.Count,
            ["dim"] = s.Dim,
            ["floor"] = double.IsNaN(reference.Floor) ? null : reference.Floor,
            ["mean_f64_base64"] = Base64(s.Mean),
            ["covariance_f64_base64"] = Base64(s.Covariance),
        };
        return Encoding.UTF8.GetBytes(node.ToJsonString() + "\n");
    }

    /// <summary>Reads the bytes of a <c>reference.json</c>; <paramref name="path"/> names it in errors.</summary>
    /// <exception cref="DitCacheException">Not such a file.</exception>
    public static ReferenceStatistics Parse(byte[] bytes, string path)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        try
        {
            JsonNode node = JsonNode.Parse(bytes) ?? throw new JsonException("null");
            int count = node["count"]!.GetValue<int>(), dim = node["dim"]!.GetValue<int>();
            double[] mean = Doubles(node["mean_f64_base64"]!.GetValue<string>());
            double[] cov = Doubles(node["covariance_f64_base64"]!.GetValue<string>());
            if (mean.Length != dim || cov.Length != dim * dim)
            {
                throw new JsonException($"mean of {mean.Length} and covariance of {cov.Length} values do not fit dim {dim}");
            }

            double floor = node["floor"] is JsonNode f ? f.GetValue<double>() : double.NaN;
            return new ReferenceStatistics(new FeatureStatistics(mean, cov, dim, count), floor, node["source"]!.GetValue<string>());
        }
        catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException or FormatException or ArgumentException)
        {
            throw new DitCacheException($"{path}: not a reference statistics file ({e.Message}); it was edited or damaged: run the shard again", e);
        }
    }

    private static string Base64(double[] values) => Convert.ToBase64String(MemoryMarshal.AsBytes(values.AsSpan()));

    private static double[] Doubles(string base64)
    {
        byte[] bytes = Convert.FromBase64String(base64);
        if (bytes.Length % sizeof(double) != 0)
        {
            throw new FormatException($"{bytes.Length} bytes are not a whole number of float64 values");
        }

        return MemoryMarshal.Cast<byte, double>(bytes).ToArray();
    }
}
