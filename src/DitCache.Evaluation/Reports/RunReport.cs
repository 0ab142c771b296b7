using System;
using System.Globalization;
using System.IO;
using System.Text.Json;
using DitCache.Models;
using DitCache.Sampling;

namespace DitCache.Evaluation.Reports;

/// <summary>
/// The JSON report of one sampling run (<c>ditcache sample --report</c>): per-step records (n = 0 is the noisiest
/// step, t the model timestep, computed = every block ran), FLOPs in the DiT-paper convention for the whole run
/// including the CFG batch, and the wall clock of the sampling loop. Each step carries <c>sites</c>, one letter per
/// cache site in block order (attention then MLP of block 0, then block 1, ...): C computed, F forecast, S skipped
/// with the whole block stack. A <c>--shadow</c> run adds per step the relative L2 error of every forecast site
/// (<c>shadow_rel_l2</c>, null where computed) and of a forecast block stack (<c>shadow_blocks_rel_l2</c>). A run that
/// recorded tokens (<c>--report-tokens</c>) adds per step <c>tokens</c>: for every block whose MLP was recomputed on
/// some tokens, the block, k and the k token indices of every batch row (<c>token_rows</c> says which rows).
/// <c>seconds</c> is the sampling loop alone; <c>decode_seconds</c> the VAE decode of the latents (0 when no VAE ran,
/// and then <c>vae</c> is null).
/// <c>peak_rss_bytes</c> is the process's peak resident memory so far (Linux VmHWM: weights, activations, cache and
/// the runtime), null where the system does not report it.
/// </summary>
public static class RunReport
{
    /// <summary>
    /// Serialises <paramref name="result"/> with the run's settings; <paramref name="vae"/> names the VAE that decoded
    /// the latents in <paramref name="decodeSeconds"/> seconds, or is null when none ran.
    /// </summary>
    public static byte[] ToJson(SampleResult result, SampleRequest request, DitConfig config, string model, string gemm, int threads,
        string? vae = null, double decodeSeconds = 0, string weights = "f32")
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("model", model);
            json.WriteString("config", config.Name);
            json.WriteStartObject("dit");
            json.WriteNumber("depth", config.Depth);
            json.WriteNumber("hidden", config.Hidden);
            json.WriteNumber("heads", config.Heads);
            json.WriteNumber("patch", config.Patch);
            json.WriteNumber("input_size", config.InputSize);
            json.WriteNumber("in_channels", config.InChannels);
            json.WriteBoolean("learn_sigma", config.LearnSigma);
            json.WriteNumber("num_classes", config.NumClasses);
            json.WriteEndObject();
            json.WriteString("sampler", result.Sampler);
            json.WriteString("cache", result.Cache);
            json.WriteNumber("cfg", request.CfgScale);
            json.WriteNumber("cfg_channels", request.GuidedChannels ?? config.InChannels);
            json.WriteNumber("seed", request.Seed);
            json.WriteStartArray("classes");
            foreach (int c in request.Classes)
            {
                json.WriteNumberValue(c);
            }

            json.WriteEndArray();
            json.WriteString("gemm", gemm);
            json.WriteString("weights", weights);
            json.WriteNumber("threads", threads);
            json.WriteNumber("flops", result.Flops);
            json.WriteNumber("full_flops", result.FullFlops);
            json.WriteNumber("flops_speedup", result.Flops > 0 ? result.FullFlops / result.Flops : 0);
            json.WriteNumber("seconds", result.Seconds);
            json.WriteNumber("decode_seconds", decodeSeconds);
            if (vae is null)
            {
                json.WriteNull("vae");
            }
            else
            {
                json.WriteString("vae", vae);
            }

            json.WriteNumber("cache_bytes", result.CacheBytes);
            if (PeakRssBytes() is long peak)
            {
                json.WriteNumber("peak_rss_bytes", peak);
            }
            else
            {
                json.WriteNull("peak_rss_bytes");
            }

            json.WriteNumber("computed_steps", Array.FindAll(result.Steps, s => s.Computed).Length);
            json.WriteString("site_order", "per block: attn, mlp; C computed, F forecast, P computed on some tokens (ToCa, DuCa), S skipped with the block stack");
            StepTelemetry telemetry = result.Telemetry;
            json.WriteBoolean("shadow", telemetry.ShadowErrors is not null);
            json.WriteBoolean("tokens_recorded", telemetry.Tokens is not null);
            if (telemetry.Samples is not null)
            {
                json.WriteString("sample_order", telemetry.Samples.Length > 0 && telemetry.Samples[0].Length != request.Classes.Length
                    ? "per step, one letter per batch row: one cond row per image in --classes order, then one uncond row per image (each pair decided together); C computed, D drafted without a check, A draft accepted by the check, R draft rejected and the step computed, X draft failed the check but used (the next step is full)"
                    : "per step, one letter per image in --classes order: C computed, D drafted without a check, A draft accepted by the check, R draft rejected and the step computed, X draft failed the check but used (the next step is full)");
            }

            if (telemetry.Tokens is not null)
            {
                json.WriteString("token_rows", telemetry.TokenRows == request.Classes.Length
                    ? "one per image, in --classes order; tokens row-major on the patch grid, highest score first"
                    : "the CFG batch: one cond row per image in --classes order, then one uncond row per image; each row picks its own tokens; tokens row-major on the patch grid, highest score first");
            }

            json.WriteStartArray("steps");
            foreach (StepRecord s in result.Steps)
            {
                json.WriteStartObject();
                json.WriteNumber("n", s.N);
                json.WriteNumber("t", s.Timestep);
                json.WriteBoolean("computed", s.Computed);
                json.WriteNumber("flops", s.Flops);
                json.WriteNumber("modules_computed", s.ModulesComputed);
                json.WriteNumber("modules_forecast", s.ModulesForecast);
                json.WriteNumber("modules_partial", s.ModulesPartial);
                json.WriteBoolean("blocks_skipped", s.BlocksSkipped);
                json.WriteNumber("blocks_skipped_count", s.BlocksSkippedCount);
                json.WriteString("sites", StepTelemetry.Letters(telemetry.Sites[s.N]));
                if (telemetry.Samples is { } samples)
                {
                    json.WriteString("samples", StepTelemetry.Letters(samples[s.N]));
                }

                if (telemetry.ShadowErrors is { } errors && telemetry.ShadowBlocksErrors is { } blocks)
                {
                    json.WriteStartArray("shadow_rel_l2");
                    foreach (double e in errors[s.N])
                    {
                        WriteNumberOrNull(json, e);
                    }

                    json.WriteEndArray();
                    json.WritePropertyName("shadow_blocks_rel_l2");
                    WriteNumberOrNull(json, blocks[s.N]);
                }

                if (telemetry.TokenCounts is { } counts && telemetry.Tokens is { } tokens)
                {
                    WriteTokens(json, counts[s.N], tokens[s.N], telemetry.TokenRows);
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return stream.ToArray();
    }

    /// <summary>The step's <c>tokens</c>: [{block, k, rows: [[k indices] per batch row]}] over the blocks whose MLP was partial.</summary>
    private static void WriteTokens(Utf8JsonWriter json, int[] counts, int[] tokens, int rows)
    {
        int perBlock = tokens.Length / counts.Length;
        json.WriteStartArray("tokens");
        for (int l = 0; l < counts.Length; l++)
        {
            int k = counts[l];
            if (k < 0)
            {
                continue;
            }

            json.WriteStartObject();
            json.WriteNumber("block", l);
            json.WriteNumber("k", k);
            json.WriteStartArray("rows");
            for (int b = 0; b < rows; b++)
            {
                json.WriteStartArray();
                foreach (int t in tokens.AsSpan((l * perBlock) + (b * k), k))
                {
                    json.WriteNumberValue(t);
                }

                json.WriteEndArray();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        json.WriteEndArray();
    }

    private static void WriteNumberOrNull(Utf8JsonWriter json, double value)
    {
        if (double.IsFinite(value))
        {
            json.WriteNumberValue(value);
        }
        else
        {
            json.WriteNullValue();
        }
    }

    /// <summary>
    /// The peak resident set size of this process in bytes: the <c>VmHWM</c> line of <c>/proc/self/status</c> (in
    /// kB) on Linux, null elsewhere or when the line is missing or unreadable as a number.
    /// </summary>
    public static long? PeakRssBytes()
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                string[] parts = line["VmHWM:".Length..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                return parts.Length == 2 && parts[1] == "kB"
                    && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out long kb) ? kb * 1024 : null;
            }
        }

        return null;
    }
}
