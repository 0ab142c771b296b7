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
/// The calibration file beside a model (<c>fmnist-dit.safetensors</c> → <c>fmnist-dit.calibration.json</c>): a map
/// from method name to that method's section (<see cref="ICalibrationSection"/>), each optional; the methods and their
/// section types come from <see cref="CacheRegistry.Calibrated"/>. Written by
/// <c>ditcache calibrate</c> through a temporary file; writing one section keeps the others.
/// </summary>
public sealed class CalibrationFile
{
    /// <summary>The file name suffix that replaces the model's extension.</summary>
    public const string Suffix = ".calibration.json";

    private readonly Dictionary<string, ICalibrationSection> _sections = new(StringComparer.Ordinal);
    private DitCacheException? _error;

    private static readonly JsonSerializerOptions s_json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.Strict,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>
    /// A calibration read from <paramref name="source"/> (which may not exist: then there is no section), holding
    /// <paramref name="sections"/> (null entries are skipped; at most one per method).
    /// </summary>
    public CalibrationFile(string source, string modelHint, params IEnumerable<ICalibrationSection?> sections)
    {
        ArgumentNullException.ThrowIfNull(sections);
        Source = source;
        ModelHint = modelHint;
        foreach (ICalibrationSection? section in sections)
        {
            if (section is not null && !_sections.TryAdd(section.Method, section))
            {
                throw new ArgumentException($"two '{section.Method}' sections", nameof(sections));
            }
        }
    }

    /// <summary>The section names of the calibrated methods, in registry order (<see cref="CacheRegistry.Calibrated"/>).</summary>
    public static IReadOnlyList<string> Methods { get; } = [.. CacheRegistry.Calibrated.Select(m => m.Name)];

    /// <summary>Where the calibration was (or would have been) read: a path, or <c>embedded:…</c>.</summary>
    public string Source { get; }

    /// <summary>The model path to put in a <c>ditcache calibrate … --model</c> hint.</summary>
    public string ModelHint { get; }

    /// <summary>The section of type <typeparamref name="T"/>, or null.</summary>
    /// <exception cref="DitCacheException">The file could not be read (<see cref="Deferred"/>).</exception>
    public T? Section<T>()
        where T : class, ICalibrationSection<T> => (T?)Section(T.Name);

    /// <summary>The section named <paramref name="method"/>, or null.</summary>
    /// <exception cref="DitCacheException">The file could not be read (<see cref="Deferred"/>).</exception>
    public ICalibrationSection? Section(string method) =>
        _error is null ? _sections.GetValueOrDefault(method) : throw _error;

    /// <summary>
    /// The calibration a policy of type <typeparamref name="T"/>'s method builds from: the run's file, its section,
    /// checked against the run's sampler and CFG scale (<see cref="CheckRun"/>).
    /// </summary>
    /// <exception cref="DitCacheException">No file, no section, or a run mismatch (each names the command that fixes it).</exception>
    public static (CalibrationFile File, T Section) For<T>(CacheRunInfo run)
        where T : class, ICalibrationSection<T>
    {
        ArgumentNullException.ThrowIfNull(run);
        CalibrationFile file = run.Calibration ?? throw new DitCacheException(
            $"--cache {T.Name} needs the model's calibration file and none was given; run 'ditcache calibrate {T.Name} --model MODEL'", exitCode: 2);
        T section = file.Section<T>() ?? throw file.MissingSection(T.Name);
        file.CheckRun(T.Name, section.Run, run.Sampler, run.CfgScale);
        return (file, section);
    }

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
            return new CalibrationFile(path, modelHint) { _error = e };
        }
    }

    /// <summary>The calibration path of a model file: the same directory, the extension replaced by <see cref="Suffix"/>.</summary>
    public static string PathFor(string modelPath)
    {
        ArgumentNullException.ThrowIfNull(modelPath);
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelPath));     // a folder: beside it, not in it
        return Path.Combine(Path.GetDirectoryName(full) ?? ".", Path.GetFileNameWithoutExtension(full) + Suffix);
    }

    /// <summary>An empty calibration (no file was found at <paramref name="source"/>).</summary>
    public static CalibrationFile Missing(string source, string modelHint) => new(source, modelHint);

    /// <summary>Reads <paramref name="path"/>; a missing file gives an empty calibration, a malformed one an error.</summary>
    /// <exception cref="DitCacheException">The file exists but is not a valid calibration (names the key and the fix).</exception>
    public static CalibrationFile Load(string path, string modelHint)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Present(path)
            ? Parse(ReadExisting(path, modelHint), path, modelHint)
            : Missing(path, modelHint);
    }

    /// <summary>
    /// The problem that a run reading a section would report (a file beside the model that is not a regular file, or
    /// cannot be read or parsed), or null. A run that reads no section warns with it instead (<see cref="Deferred"/>).
    /// </summary>
    public string? Problem => _error?.Message;

    // Whether anything is at path, a broken or looping symbolic link included (File.Exists follows links).
    private static bool Present(string path) => File.Exists(path) || Directory.Exists(path) || new FileInfo(path).LinkTarget is not null;

    // The bytes of the calibration at path, which exists in some form: a directory, a FIFO (its read would block
    // forever), a device (it would stream without end), a dangling link or a link loop are no calibration.
    private static byte[] ReadExisting(string path, string modelHint)
    {
        string fix = $"remove it, or write it with 'ditcache calibrate all --model {modelHint}'";
        if (Directory.Exists(path))
        {
            throw new DitCacheException($"{path}: the calibration beside the model is a directory; {fix}");
        }

        if (FileKind.IsSpecial(path))
        {
            throw new DitCacheException($"{path}: the calibration beside the model is not a regular file (a device or pipe); {fix}");
        }

        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DitCacheException($"{path}: cannot read the calibration beside the model ({e.Message.TrimEnd('.', ' ')}); {fix}", e);
        }
    }

    /// <summary>Parses calibration JSON; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="DitCacheException">Malformed JSON, an unknown or malformed section, or inconsistent lengths.</exception>
    public static CalibrationFile Parse(ReadOnlySpan<byte> json, string source, string modelHint)
    {
        JsonObject root = ParseRoot(json, source);
        var sections = new List<ICalibrationSection>();
        foreach (CalibratedMethod method in CacheRegistry.Calibrated)
        {
            if (ReadSection(root, method, source, modelHint) is { } section)
            {
                sections.Add(section);
            }
        }

        foreach ((string key, _) in root)
        {
            if (key != "format" && !Methods.Contains(key))
            {
                throw Malformed(source, key, $"is not a known section (expected {string.Join(", ", Methods)})", modelHint, key);
            }
        }

        var file = new CalibrationFile(source, modelHint, sections);
        file.Check();
        return file;
    }

    /// <summary>
    /// Writes <paramref name="section"/> into the file at <paramref name="path"/> under its method's name, keeping the
    /// other sections, through a temporary file renamed into place.
    /// </summary>
    public static void WriteSection(string path, ICalibrationSection section, string modelHint)
    {
        ArgumentNullException.ThrowIfNull(section);
        string method = section.Method;
        // Read, merge and write under an exclusive lock, so two calibrate runs on one model keep both sections.
        using FileStream gate = Lock(path);
        JsonObject root = Present(path)
            ? ParseRoot(ReadExisting(path, modelHint), path)
            : new JsonObject();
        root["format"] = 1;
        root[method] = JsonSerializer.SerializeToNode(section, section.GetType(), s_json);
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(CompactNumberArrays(root.ToJsonString(s_json)) + "\n");
        Parse(bytes, path, modelHint);                                                       // never write what we cannot read
        AtomicFile.Write(path, "calibration", s => s.Write(bytes));
    }

    /// <summary>
    /// An exclusive lock for <paramref name="path"/> (FileShare.None: flock(2) on Linux), waited for up to a minute. The
    /// lock file lives in the temporary directory, named by a hash of the full path, so nothing is left beside the
    /// model; it is never removed (removing it while another run waits would split the lock).
    /// </summary>
    /// <exception cref="DitCacheException">The lock was held for over a minute.</exception>
    public static FileStream Lock(string path)
    {
        string full = Path.GetFullPath(path);
        string hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(full)))[..16];
        string dir = Path.Combine(Path.GetTempPath(), "ditcache-locks");
        Directory.CreateDirectory(dir);
        string lockPath = Path.Combine(dir, hash + ".lock");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (clock.Elapsed < TimeSpan.FromMinutes(1))
            {
                System.Threading.Thread.Sleep(50);                                           // another run is writing
            }
            catch (IOException e)
            {
                throw new DitCacheException($"{path}: another ditcache calibrate has held {lockPath} for a minute; wait for it to finish, or remove the lock file if no run is left", e);
            }
        }
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

    private static ICalibrationSection? ReadSection(JsonObject root, CalibratedMethod method, string source, string modelHint)
    {
        string key = method.Name;
        if (!root.TryGetPropertyValue(key, out JsonNode? node) || node is null)
        {
            return null;
        }

        try
        {
            return method.Deserialize(node, s_json) ?? throw Malformed(source, key, "is null", modelHint, key);
        }
        catch (JsonException e)
        {
            throw Malformed(source, key + (e.Path is { Length: > 1 } p ? p[1..] : ""), $"does not match the expected layout ({e.Message})", modelHint, key, e);
        }
    }

    /// <summary>Every section in registry order: the run fields, then the method's own checks.</summary>
    private void Check()
    {
        foreach (CalibratedMethod method in CacheRegistry.Calibrated)
        {
            if (_sections.GetValueOrDefault(method.Name) is { } section)
            {
                CheckRunFields(section.Run, method.Name);
                section.Check(new CalibrationCheck(this, method.Name));
            }
        }
    }

    private void CheckRunFields(CalibrationRun? run, string method)
    {
        Require(run is not null, method + ".run", "is missing", method);
        Require(run!.Steps >= 2 && run.Steps <= 1000, method + ".run.steps", $"must be in [2, 1000], got {run.Steps}", method);
        Require(run.Sampler is "ddim" or "ddpm", method + ".run.sampler", $"must be ddim or ddpm, got '{run.Sampler}'", method);
        Require(double.IsFinite(run.Cfg) && run.Cfg >= 1, method + ".run.cfg", string.Create(CultureInfo.InvariantCulture, $"must be a number >= 1, got {run.Cfg}"), method);
    }

    internal void Require(bool ok, string key, string problem, string method)
    {
        if (!ok)
        {
            throw Malformed(Source, key, problem, ModelHint, method);
        }
    }

    private static DitCacheException Malformed(string source, string key, string problem, string modelHint, string method, Exception? inner = null) =>
        new($"calibration {source}: '{key}' {problem}; rerun 'ditcache calibrate {method} --model {modelHint}' to rewrite it", 1, inner);
}
