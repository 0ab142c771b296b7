using System;
using System.IO;
using System.Text.Json;
using DitCache.Evaluation.Data;
using DitCache.Evaluation.Quality;
using DitCache.Models;

namespace DitCache.Evaluation.Reports;

/// <summary>
/// The JSON report of one quality evaluation (<c>ditcache evaluate --report</c>): the settings, classifier accuracy
/// overall and per class, the Frechet distance of the samples to the real test images with the sample counts of both
/// sides, the real floors, and the wall clock. Frechet distances here come from the Fashion-MNIST classifier's
/// features (models/fmnist-classifier.md), not Inception: compare them only with each other, at equal sample counts.
/// </summary>
public static class QualityReport
{
    /// <summary>Serialises <paramref name="result"/> with the run's settings.</summary>
    public static byte[] ToJson(QualityResult result, DitConfig config, string model, string classifier, string gemm, int threads)
    {
        QualitySettings s = result.Settings;
        QualityReference r = result.Reference
            ?? throw new ArgumentException("a quality report needs an evaluation with a quality model", nameof(result));
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("model", model);
            json.WriteString("config", config.Name);
            json.WriteString("classifier", classifier);
            WriteSettings(json, s);
            json.WriteNumber("accuracy", result.Accuracy);
            json.WriteStartArray("classes");
            for (int i = 0; i < s.Classes.Length; i++)
            {
                int c = s.Classes[i];
                json.WriteStartObject();
                json.WriteNumber("class", c);
                json.WriteString("name", FashionMnist.ClassNames[c]);
                json.WriteNumber("accuracy", result.ClassAccuracy[i]);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteStartObject("frechet_distance");
            json.WriteNumber("generated_vs_test", result.FrechetDistance);
            json.WriteNumber("generated_count", s.TotalSamples);
            json.WriteNumber("test_count", r.Count);
            json.WriteNumber("floor_test_halves", r.Floor);
            json.WriteNumber("floor_count_a", r.FloorCountA);
            json.WriteNumber("floor_count_b", r.FloorCountB);
            if (result.MatchedFloor is double matched)
            {
                json.WriteNumber("floor_train_vs_test", matched);
                json.WriteNumber("floor_train_count", s.TotalSamples);
            }
            else
            {
                json.WriteNull("floor_train_vs_test");
            }

            json.WriteString("test_source", r.Source);
            json.WriteEndObject();
            WriteCost(json, result, gemm, threads);
            json.WriteEndObject();
        }

        return stream.ToArray();
    }

    /// <summary>
    /// The JSON report of a FID evaluation (<c>ditcache evaluate --inception --fid-stats --report</c>): the settings,
    /// the FID against the reference statistics, the scorer and reference files, and the wall clock.
    /// </summary>
    public static byte[] FidToJson(QualityResult result, DitConfig config, string model, string inception, string fidStats, string? vae, string gemm, int threads)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(config);
        QualitySettings s = result.Settings;
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("model", model);
            json.WriteString("config", config.Name);
            json.WriteString("vae", vae);
            json.WriteString("inception", inception);
            json.WriteString("fid_stats", fidStats);
            WriteSettings(json, s);
            json.WriteNumber("classes", s.Classes.Length);
            json.WriteNumber("fid", result.FrechetDistance);
            WriteCost(json, result, gemm, threads);
            json.WriteEndObject();
        }

        return stream.ToArray();
    }

    private static void WriteSettings(Utf8JsonWriter json, QualitySettings s)
    {
        json.WriteString("sampler", s.Sampler);
        json.WriteNumber("steps", s.Steps);
        json.WriteNumber("cfg", s.CfgScale);
        json.WriteString("cache", s.Cache.Spec);
        json.WriteNumber("seed", s.Seed);
        json.WriteNumber("batch", s.BatchSize);
        json.WriteNumber("samples", s.TotalSamples);
        json.WriteNumber("samples_per_class", s.SamplesPerClass);
    }

    private static void WriteCost(Utf8JsonWriter json, QualityResult result, string gemm, int threads)
    {
        json.WriteString("gemm", gemm);
        json.WriteNumber("threads", threads);
        json.WriteNumber("seconds", result.Seconds);
        json.WriteNumber("sampling_seconds", result.SamplingSeconds);
        json.WriteNumber("flops", result.Flops);
        json.WriteNumber("full_flops", result.FullFlops);
    }
}
