using System;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DitCache.Evaluation.Metrics;
using DitCache.Evaluation.Quality;
using DitCache.Tensors;

namespace DitCache.Evaluation.Shards;

/// <summary>
/// The real images' feature statistics as a scored shard stores them (<c>reference.json</c>), so <c>ditcache merge</c>
/// computes the Frechet distance without the data set: mean and covariance as JSON numbers, which round-trip float64
/// exactly.
/// </summary>
/// <param name="Statistics">Mean and covariance of the real images' features.</param>
/// <param name="Floor">FD between the two halves of the real images.</param>
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
            ["floor"] = reference.Floor,
            ["mean"] = new JsonArray([.. s.Mean.Select(v => (JsonNode?)v)]),
            ["covariance"] = new JsonArray([.. s.Covariance.Select(v => (JsonNode?)v)]),
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
            double[] mean = [.. node["mean"]!.AsArray().Select(v => v!.GetValue<double>())];
            double[] cov = [.. node["covariance"]!.AsArray().Select(v => v!.GetValue<double>())];
            if (mean.Length != dim || cov.Length != dim * dim)
            {
                throw new JsonException($"mean of {mean.Length} and covariance of {cov.Length} values do not fit dim {dim}");
            }

            return new ReferenceStatistics(new FeatureStatistics(mean, cov, dim, count), node["floor"]!.GetValue<double>(), node["source"]!.GetValue<string>());
        }
        catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException or FormatException)
        {
            throw new DitCacheException($"{path}: not a reference statistics file ({e.Message}); it was edited or damaged: run the shard again", e);
        }
    }
}
