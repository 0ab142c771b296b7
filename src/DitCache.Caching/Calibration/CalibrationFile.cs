using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using DitCache.Tensors;
using DitCache.Tensors.IO;

namespace DitCache.Caching.Calibration;

/// <summary>
/// How a calibration was measured: the sampling run that produced it and the command that reproduces it.
/// </summary>
/// <param name="Sampler">"ddim" or "ddpm".</param>
/// <param name="Steps">Sampling steps S of the calibration run.</param>
/// <param name="Cfg">Classifier-free guidance scale of the calibration run (1 = no CFG batch).</param>
/// <param name="Samples">Images sampled (classes i mod num_classes, i = 0 … samples−1).</param>
/// <param name="Seed">Seed of the initial noise.</param>
/// <param name="Command">The <c>ditcache calibrate …</c> command line that wrote this section.</param>
public sealed record CalibrationRun(string Sampler, int Steps, double Cfg, int Samples, int Seed, string Command);

/// <summary>The knob value that <c>ditcache calibrate --target-speedup</c> chose, with what it measured.</summary>
/// <param name="TargetSpeedup">The requested FLOPs ratio (full FLOPs / cached FLOPs).</param>
/// <param name="Knob">The knob searched, e.g. <c>l</c>, <c>thresh</c> or <c>alpha</c>.</param>
/// <param name="Value">The chosen value.</param>
/// <param name="Spec">The <c>--cache</c> spec that uses it.</param>
/// <param name="FlopsRatio">Measured FLOPs ratio of that spec on the calibration samples.</param>
/// <param name="Psnr">Mean PSNR (dB) of the cached samples against the full-compute samples of the calibration run.</param>
public sealed record TunedSetting(double TargetSpeedup, string Knob, double Value, string Spec, double FlopsRatio, double Psnr);

/// <summary>
/// TeaCache's calibration (METHODS.md 5.5): for n = 1 … S−1, the relative L1 change of block 0's modulated input
/// (<see cref="RelIn"/>) and of the model output (<see cref="RelOut"/>: the guided ε the sampler consumes, variance
/// channels excluded) between steps n−1 and n, and the degree-4 least-squares fit rel_out ≈ poly(rel_in), highest
/// degree first (<c>np.poly1d</c> order).
/// </summary>
public sealed record TeaCacheCalibration(CalibrationRun Run, double[] RelIn, double[] RelOut, double[] Coefficients, TunedSetting? Tuned = null);

/// <summary>
/// SmoothCache's calibration (METHODS.md 5.7; Roblox/SmoothCache <c>calibration_helper.py</c>): per component type,
/// <see cref="Lookahead"/> rows; row r (r = 1 … L, stored at index r−1) holds S−r values, entry i being
/// ‖F_i − F_{i+r}‖₁ / ‖F_{i+r}‖₁ averaged over the blocks (the error of reusing step i's output r steps later).
/// </summary>
public sealed record SmoothCacheCalibration(CalibrationRun Run, int Lookahead, double[][] Attn, double[][] Mlp, TunedSetting? Tuned = null);

/// <summary>
/// MagCache's calibration (METHODS.md 5.8): γ_n = mean over tokens (and images) of ‖r_n‖₂ / ‖r_{n−1}‖₂ with
/// r = last-block output − block-0 input, norms over channels; γ_0 = 1.
/// </summary>
public sealed record MagCacheCalibration(CalibrationRun Run, double[] Gamma, TunedSetting? Tuned = null);

/// <summary>
/// The calibration file beside a model (<c>fmnist-dit.safetensors</c> → <c>fmnist-dit.calibration.json</c>): one
/// section per method (<c>teacache</c>, <c>smoothcache</c>, <c>magcache</c>), each optional. Written by
/// <c>ditcache calibrate</c> through a temporary file; writing one section keeps the others.
/// </summary>
public sealed class CalibrationFile
{
    /// <summary>The file name suffix that replaces the model's extension.</summary>
    public const string Suffix = ".calibration.json";

    /// <summary>The section names, as used in the JSON and by <c>ditcache calibrate</c>.</summary>
    public static readonly IReadOnlyList<string> Methods = ["teacache", "smoothcache", "magcache"];

    private readonly TeaCacheCalibration? _teaCache;
    private readonly SmoothCacheCalibration? _smoothCache;
    private readonly MagCacheCalibration? _magCache;
    private DitCacheException? _error;

    private static readonly JsonSerializerOptions s_json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.Strict,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>A calibration read from <paramref name="source"/> (which may not exist: then every section is null).</summary>
    public CalibrationFile(string source, string modelHint, TeaCacheCalibration? teaCache, SmoothCacheCalibration? smoothCache,
        MagCacheCalibration? magCache)
    {
        Source = source;
        ModelHint = modelHint;
        _teaCache = teaCache;
        _smoothCache = smoothCache;
        _magCache = magCache;
    }

    /// <summary>Where the calibration was (or would have been) read: a path, or <c>embedded:…</c>.</summary>
    public string Source { get; }

    /// <summary>The model path to put in a <c>ditcache calibrate … --model</c> hint.</summary>
    public string ModelHint { get; }

    /// <summary>TeaCache's section, or null.</summary>
    /// <exception cref="DitCacheException">The file could not be read (<see cref="Deferred"/>).</exception>
    public TeaCacheCalibration? TeaCache => _error is null ? _teaCache : throw _error;

    /// <summary>SmoothCache's section, or null.</summary>
    /// <exception cref="DitCacheException">The file could not be read (<see cref="Deferred"/>).</exception>
    public SmoothCacheCalibration? SmoothCache => _error is null ? _smoothCache : throw _error;

    /// <summary>MagCache's section, or null.</summary>
    /// <exception cref="DitCacheException">The file could not be read (<see cref="Deferred"/>).</exception>
    public MagCacheCalibration? MagCache => _error is null ? _magCache : throw _error;

    /// <summary>
    /// <see cref="Load"/>, except that a malformed file is reported only when a section is read: a run that uses no
    /// calibrated accelerator (e.g. <c>--cache none</c>) is not stopped by a broken calibration beside its model.
    /// </summary>
    public static CalibrationFile Deferred(string path, string modelHint)
    {
        try
        {
            return Load(path, modelHint);
        }
        catch (DitCacheException e)
        {
            return new CalibrationFile(path, modelHint, null, null, null) { _error = e };
        }
    }

    /// <summary>The calibration path of a model file: the same directory, the extension replaced by <see cref="Suffix"/>.</summary>
    public static string PathFor(string modelPath) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(modelPath)) ?? ".", Path.GetFileNameWithoutExtension(modelPath) + Suffix);

    /// <summary>An empty calibration (no file was found at <paramref name="source"/>).</summary>
    public static CalibrationFile Missing(string source, string modelHint) => new(source, modelHint, null, null, null);

    /// <summary>Reads <paramref name="path"/>; a missing file gives an empty calibration, a malformed one an error.</summary>
    /// <exception cref="DitCacheException">The file exists but is not a valid calibration (names the key and the fix).</exception>
    public static CalibrationFile Load(string path, string modelHint) =>
        File.Exists(path) ? Parse(File.ReadAllBytes(path), path, modelHint) : Missing(path, modelHint);

    /// <summary>Parses calibration JSON; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="DitCacheException">Malformed JSON, an unknown or malformed section, or inconsistent lengths.</exception>
    public static CalibrationFile Parse(ReadOnlySpan<byte> json, string source, string modelHint)
    {
        JsonObject root = ParseRoot(json, source);
        TeaCacheCalibration? tea = Section<TeaCacheCalibration>(root, "teacache", source, modelHint);
        SmoothCacheCalibration? smooth = Section<SmoothCacheCalibration>(root, "smoothcache", source, modelHint);
        MagCacheCalibration? mag = Section<MagCacheCalibration>(root, "magcache", source, modelHint);
        foreach ((string key, _) in root)
        {
            if (key != "format" && !Methods.Contains(key))
            {
                throw Malformed(source, key, $"is not a known section (expected {string.Join(", ", Methods)})", modelHint, key);
            }
        }

        var file = new CalibrationFile(source, modelHint, tea, smooth, mag);
        file.Check();
        return file;
    }

    /// <summary>
    /// Writes <paramref name="section"/> (a <see cref="TeaCacheCalibration"/>, <see cref="SmoothCacheCalibration"/> or
    /// <see cref="MagCacheCalibration"/>) into the file at <paramref name="path"/>, keeping its other sections, through a
    /// temporary file renamed into place.
    /// </summary>
    public static void WriteSection(string path, string method, object section, string modelHint)
    {
        JsonObject root = File.Exists(path) ? ParseRoot(File.ReadAllBytes(path), path) : new JsonObject();
        root["format"] = 1;
        root[method] = JsonSerializer.SerializeToNode(section, section.GetType(), s_json);
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(CompactNumberArrays(root.ToJsonString(s_json)) + "\n");
        Parse(bytes, path, modelHint);                                                       // never write what we cannot read
        AtomicFile.Write(path, "calibration", s => s.Write(bytes));
    }

    /// <summary>Indented JSON with every array of numbers on one line (a row per line instead of a number per line).</summary>
    private static string CompactNumberArrays(string json) =>
        s_numberArray.Replace(json, m => "[" + string.Join(", ", m.Groups[1].Value.Split(',', StringSplitOptions.TrimEntries)) + "]");

    private static readonly System.Text.RegularExpressions.Regex s_numberArray =
        new(@"\[\s*([-+0-9.eE]+(?:\s*,\s*[-+0-9.eE]+)*)\s*\]", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    /// <summary>The command that makes <paramref name="method"/>'s section for this file's model.</summary>
    public string CalibrateCommand(string method) => $"ditcache calibrate {method} --model {ModelHint}";

    /// <summary>
    /// The run of a section checked against the run at hand: the sampler and the CFG scale must match (a calibration
    /// measures one sampling trajectory); the step count is checked by each method.
    /// </summary>
    /// <exception cref="DitCacheException">Sampler or CFG scale differ (names both and the recalibrate command).</exception>
    public void CheckRun(string method, CalibrationRun calibrated, string? sampler, double cfg)
    {
        if (sampler is not null && !string.Equals(sampler, calibrated.Sampler, StringComparison.Ordinal))
        {
            throw new DitCacheException(
                $"--cache {method}: the calibration in {Source} was measured with --sampler {calibrated.Sampler}, this run uses {sampler}; " +
                $"recalibrate with '{CalibrateCommand(method)} --sampler {sampler}' or sample with --sampler {calibrated.Sampler}", exitCode: 2);
        }

        if (Math.Abs(cfg - calibrated.Cfg) > 1e-6)
        {
            throw new DitCacheException(FormattableString.Invariant(
                $"--cache {method}: the calibration in {Source} was measured with --cfg {calibrated.Cfg}, this run uses --cfg {cfg}; ") +
                FormattableString.Invariant($"recalibrate with '{CalibrateCommand(method)} --cfg {cfg}' or sample with --cfg {calibrated.Cfg}"), exitCode: 2);
        }
    }

    /// <summary>The error for a method whose section is absent.</summary>
    public DitCacheException MissingSection(string method) => new(
        $"--cache {method} needs a calibration: {Source} has no '{method}' section{(Source.StartsWith("embedded:", StringComparison.Ordinal) || File.Exists(Source) ? "" : " (the file does not exist)")}; " +
        $"make it with '{CalibrateCommand(method)}'", exitCode: 2);

    private static JsonObject ParseRoot(ReadOnlySpan<byte> json, string source)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(json);
        }
        catch (JsonException e)
        {
            throw new DitCacheException($"calibration {source}: not valid JSON ({e.Message}); delete the file and rerun 'ditcache calibrate'", e);
        }

        return node as JsonObject
            ?? throw new DitCacheException($"calibration {source}: the top level must be a JSON object with sections {string.Join(", ", Methods)}; delete the file and rerun 'ditcache calibrate'");
    }

    private static T? Section<T>(JsonObject root, string key, string source, string modelHint)
        where T : class
    {
        if (!root.TryGetPropertyValue(key, out JsonNode? node) || node is null)
        {
            return null;
        }

        try
        {
            return node.Deserialize<T>(s_json) ?? throw Malformed(source, key, "is null", modelHint, key);
        }
        catch (JsonException e)
        {
            throw Malformed(source, key + (e.Path is { Length: > 1 } p ? p[1..] : ""), $"does not match the expected layout ({e.Message})", modelHint, key, e);
        }
    }

    private void Check()
    {
        if (TeaCache is { } tea)
        {
            CheckRunFields(tea.Run, "teacache");
            Require(tea.Coefficients?.Length == 5, "teacache.coefficients", "must hold 5 numbers (degree 4, highest first)", "teacache");
            Require(tea.RelIn is not null && tea.RelOut is not null && tea.RelIn.Length == tea.RelOut.Length && tea.RelIn.Length == tea.Run.Steps - 1,
                "teacache.rel_in/rel_out", $"must both hold steps − 1 = {tea.Run.Steps - 1} numbers", "teacache");
            Require(tea.Coefficients!.All(double.IsFinite), "teacache.coefficients", "must be finite", "teacache");
        }

        if (SmoothCache is { } smooth)
        {
            CheckRunFields(smooth.Run, "smoothcache");
            Require(smooth.Lookahead >= 1 && smooth.Lookahead < smooth.Run.Steps, "smoothcache.lookahead", $"must be in [1, steps − 1], got {smooth.Lookahead}", "smoothcache");
            foreach ((string name, double[][] rows) in new[] { ("attn", smooth.Attn), ("mlp", smooth.Mlp) })
            {
                Require(rows is not null && rows.Length == smooth.Lookahead, $"smoothcache.{name}", $"must hold lookahead = {smooth.Lookahead} rows", "smoothcache");
                for (int r = 1; r <= rows!.Length; r++)
                {
                    Require(rows[r - 1]?.Length == smooth.Run.Steps - r, $"smoothcache.{name}[{r - 1}]",
                        $"must hold steps − {r} = {smooth.Run.Steps - r} numbers (row r compares step i with step i + r)", "smoothcache");
                }
            }
        }

        if (MagCache is { } mag)
        {
            CheckRunFields(mag.Run, "magcache");
            Require(mag.Gamma is not null && mag.Gamma.Length == mag.Run.Steps, "magcache.gamma", $"must hold steps = {mag.Run.Steps} numbers", "magcache");
            Require(mag.Gamma!.All(g => double.IsFinite(g) && g > 0), "magcache.gamma", "must be positive and finite", "magcache");
        }
    }

    private void CheckRunFields(CalibrationRun? run, string method)
    {
        Require(run is not null, method + ".run", "is missing", method);
        Require(run!.Steps >= 2 && run.Steps <= 1000, method + ".run.steps", $"must be in [2, 1000], got {run.Steps}", method);
        Require(run.Sampler is "ddim" or "ddpm", method + ".run.sampler", $"must be ddim or ddpm, got '{run.Sampler}'", method);
        Require(double.IsFinite(run.Cfg) && run.Cfg >= 1, method + ".run.cfg", string.Create(CultureInfo.InvariantCulture, $"must be a number >= 1, got {run.Cfg}"), method);
    }

    private void Require(bool ok, string key, string problem, string method)
    {
        if (!ok)
        {
            throw Malformed(Source, key, problem, ModelHint, method);
        }
    }

    private static DitCacheException Malformed(string source, string key, string problem, string modelHint, string method, Exception? inner = null) =>
        new($"calibration {source}: '{key}' {problem}; rerun 'ditcache calibrate {method} --model {modelHint}' to rewrite it", 1, inner);
}
