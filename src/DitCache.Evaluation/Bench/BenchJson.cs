using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
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
        BenchResults results;
        try
        {
            results = JsonSerializer.Deserialize<BenchResults>(File.ReadAllBytes(path), s_options)
                ?? throw new DitCacheException($"{path}: empty results file; delete it or choose another --out", exitCode: 1);
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or NotSupportedException)
        {
            // FormatException: a strip that is not base64; InvalidOperationException: a strip that is not a string.
            throw new DitCacheException($"{path}: not a ditcache bench results file ({e.Message.TrimEnd('.')}); delete it or choose another --out", exitCode: 1);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DitCacheException($"{path}: cannot read the results file ({e.Message.TrimEnd('.')}); check it, delete it or choose another --out", exitCode: 1);
        }

        Validate(results, path);
        return results;
    }

    /// <summary>
    /// Checks every field a resumed run and the reports rely on, so a damaged or hand-edited file is refused naming the
    /// field, never met later as an internal error: text present, counts in range, measurements finite where they must
    /// be (PSNR may be infinite, FD and accuracy NaN), one entry per configuration, strips of one image per class.
    /// </summary>
    /// <exception cref="DitCacheException">A field is missing or out of range (exit code 1).</exception>
    public static void Validate(BenchResults r, string path)
    {
        ArgumentNullException.ThrowIfNull(r);
        void Require(bool ok, string field, string expected)
        {
            if (!ok)
            {
                throw new DitCacheException($"{path}: '{field}' {expected}; the file is damaged or was edited: delete it or choose another --out", exitCode: 1);
            }
        }

        // Measurements are drawn in charts: a number of plausible size, or NaN (not measured).
        static bool Real(double v) => double.IsNaN(v) || Math.Abs(v) <= MaxMeasurement;
        Require(r.Model is not null && r.Machine is not null && r.Command is not null && r.Sampler is not null && r.Gemm is not null,
            "model/machine/command/sampler/gemm", "must all be strings");
        Require(r.Samples is >= 1 and <= 1_000_000, "samples", "must be 1 to 1000000");
        Require(r.Repeats is >= 1 and <= 100, "repeats", "must be 1 to 100");
        Require(r.Threads is >= 1 and <= 1024, "threads", "must be 1 to 1024");
        Require(Real(r.FloorFrechetDistance) && Real(r.MatchedFloorFrechetDistance), "floor_frechet_distance", "must be a number or NaN");
        Require(r.StripClasses is { Length: >= 1 and <= 10_000 } && r.StripClasses.All(c => c >= 0), "strip_classes", "must list 1 to 10000 class labels >= 0");
        Require(r.ImageShape is null || (r.ImageShape.Length == 3 && r.ImageShape.All(d => d is >= 1 and <= 65_536)
            && (long)r.ImageShape[0] * r.ImageShape[1] * r.ImageShape[2] <= int.MaxValue / r.StripClasses!.Length),
            "image_shape", "must be [C, H, W] of positive sizes");
        Require(r.ClassNames is null || r.ClassNames.All(n => n is not null), "class_names", "must be strings");
        Require(r.Entries is not null && r.Entries.All(e => e is not null), "entries", "must be a list of entries");
        var keys = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < r.Entries!.Count; i++)
        {
            BenchEntry e = r.Entries[i];
            string at = $"entries[{i}]";
            Require(e.Config is { Cache: not null, Steps: >= 1 and <= 1000 } && float.IsFinite(e.Config.Cfg) && e.Config.Cfg >= 1
                && e.Config.Family is not null && e.Config.Label is not null, at + ".config", "must hold a cache spec, steps 1 to 1000 and cfg >= 1");
            Require(keys.Add(e.Config.Key), at + ".config", $"repeats configuration '{e.Config.Key}'");
            Require(e.ComputedSteps >= 0 && e.ComputedSteps <= e.Config.Steps, at + ".computed_steps", $"must be 0 to {e.Config.Steps}");
            Require(e.FullStepsPerImage is null || (e.FullStepsPerImage >= e.ComputedSteps && e.FullStepsPerImage <= e.Config.Steps),
                at + ".full_steps_per_image", $"must be absent or {e.ComputedSteps} to {e.Config.Steps}");
            Require(e.Flops is >= 0 and <= 1e30 && e.ReferenceFlops is >= 0 and <= 1e30, at + ".flops", "must be 0 to 1e30");
            Require(e.Seconds is not null && e.Seconds.Count <= 100 && e.Seconds.All(s => s is >= 0 and <= MaxMeasurement), at + ".seconds", "must list at most 100 times of 0 to 1e12 s");
            Require(Real(e.Speedup) && !(e.Speedup < 0), at + ".speedup", "must be a number >= 0 or NaN");
            Require((Real(e.Psnr) || double.IsPositiveInfinity(e.Psnr)) && Real(e.Ssim) && Real(e.RelativeL2) && Real(e.FrechetDistance) && Real(e.Accuracy),
                at + ".psnr/ssim/relative_l2/frechet_distance/accuracy", "must be numbers or NaN (PSNR may be Infinity)");
            Require(e.CacheBytes >= 0, at + ".cache_bytes", "must be >= 0");
            Require(e.Timeline is not null && e.Timeline.Length <= e.Config.Steps, at + ".timeline", $"must be a string of at most {e.Config.Steps} step letters");
            Require(e.Strip is not null && e.Strip.Length % r.StripClasses.Length == 0
                && (r.ImageShape is null || e.Strip.Length == 0 || e.Strip.Length == r.StripClasses.Length * r.ImageShape[0] * r.ImageShape[1] * r.ImageShape[2]),
                at + ".strip", "must hold one image per strip class");
            Require(e.ShadowPerStep is null || (e.ShadowPerStep.Length <= e.Config.Steps && e.ShadowPerStep.All(v => Real(v) && !(v < 0))),
                at + ".shadow_per_step", $"must hold at most {e.Config.Steps} errors >= 0 (NaN on computed steps)");
            Require(e.ShadowPerBlock is null || (e.ShadowPerBlock.Length <= 10_000 && e.ShadowPerBlock.All(v => Real(v) && !(v < 0))),
                at + ".shadow_per_block", "must hold one error >= 0 per block");
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

    private const double MaxMeasurement = 1e12;

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
