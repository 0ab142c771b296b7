using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DitCache.Tensors;
using DitCache.Tensors.IO;

namespace DitCache.Evaluation.Shards;

/// <summary>One finished image of a shard as its manifest records it.</summary>
/// <param name="Index">The image's index in the run (0 … images − 1).</param>
/// <param name="File">The image's file name inside the shard folder.</param>
/// <param name="Bytes">The file's length.</param>
/// <param name="Sha256">The file's SHA-256, lower-case hex.</param>
public sealed record ShardEntry(int Index, string File, long Bytes, string Sha256);

/// <summary>
/// The output folder of one shard (<c>OUT/shard-k-of-n</c>): <c>shard.json</c> (the settings every image depends on),
/// one file per finished image written through a temporary file and a rename, and <c>manifest.jsonl</c>, one line per
/// finished image appended and flushed to disk after its file is in place. A restarted shard keeps the images its
/// manifest lists (file present, length and hash as recorded) and redoes the rest; a line cut short by a kill is
/// dropped. While a process works in the folder it holds <c>shard.lock</c> (an exclusive lock the kernel releases
/// when the process dies) and names itself in <c>shard.owner</c>, so a second process given the same shard is refused
/// before it writes anything.
/// </summary>
public sealed class ShardStore : IDisposable
{
    /// <summary>The settings file's name.</summary>
    public const string SettingsFile = "shard.json";

    /// <summary>The manifest's name.</summary>
    public const string ManifestFile = "manifest.jsonl";

    /// <summary>The lock file's name.</summary>
    public const string LockFile = ShardLock.LockFile;

    /// <summary>The file naming the process that holds the lock.</summary>
    public const string OwnerFile = ShardLock.OwnerFile;

    /// <summary>The format tag of <c>shard.json</c>.</summary>
    public const string Format = "ditcache-shard/1";

    private readonly ShardLock _lock;
    private readonly FileStream _manifest;
    private readonly Dictionary<int, ShardEntry> _done;
    private readonly string _flag;

    private ShardStore(string directory, ShardSpec spec, ShardLock lockStream, FileStream manifest, Dictionary<int, ShardEntry> done, string flag)
    {
        Directory = directory;
        Spec = spec;
        _lock = lockStream;
        _manifest = manifest;
        _done = done;
        _flag = flag;
    }

    /// <summary>The shard's folder (absolute).</summary>
    public string Directory { get; }

    /// <summary>Which shard this is.</summary>
    public ShardSpec Spec { get; }

    /// <summary>Images finished before or during this run.</summary>
    public int DoneCount => _done.Count;

    /// <summary>Whether image <paramref name="index"/> is finished.</summary>
    public bool IsDone(int index) => _done.ContainsKey(index);

    /// <summary>The file name of image <paramref name="index"/>: seven digits and <c>.safetensors</c>.</summary>
    public static string ItemName(int index) => index.ToString("D7", CultureInfo.InvariantCulture) + ".safetensors";

    /// <summary>
    /// Opens (creating it if needed) the folder of <paramref name="spec"/> under <paramref name="outDir"/>, takes its
    /// lock, and checks or writes its settings.
    /// </summary>
    /// <param name="outDir">The <c>--out-dir</c> the user gave; its parent must exist.</param>
    /// <param name="spec">The shard.</param>
    /// <param name="kind">The command that makes the images ("sample", "evaluate").</param>
    /// <param name="settings">Every setting the images depend on, by name (flag names without dashes).</param>
    /// <param name="flag">The flag that named <paramref name="outDir"/>, for messages.</param>
    /// <exception cref="DitCacheException">The folder cannot be made, another process holds the shard, or the folder
    /// holds a run of other settings.</exception>
    public static ShardStore Open(string outDir, ShardSpec spec, string kind, IReadOnlyDictionary<string, string> settings, string flag = "--out-dir")
    {
        ArgumentNullException.ThrowIfNull(outDir);
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(settings);
        string root = Path.GetFullPath(outDir);
        if (File.Exists(root))
        {
            throw new DitCacheException($"{flag} {outDir} is a file; give a folder for the shard outputs", exitCode: 2);
        }

        string? parent = Path.GetDirectoryName(root);
        if (parent is null || !System.IO.Directory.Exists(parent))
        {
            throw new DitCacheException($"{flag} {outDir}: folder '{parent}' does not exist; create it first or choose another path", exitCode: 2);
        }

        string dir = Path.Combine(root, spec.DirectoryName);
        System.IO.Directory.CreateDirectory(dir);
        ShardLock lockStream = ShardLock.Take(dir, spec);
        FileStream? manifest = null;
        try
        {
            CheckOrWriteSettings(dir, spec, kind, settings);
            Dictionary<int, ShardEntry> done = LoadDone(dir);
            manifest = new FileStream(Path.Combine(dir, ManifestFile), FileMode.Append, FileAccess.Write, FileShare.Read);
            return new ShardStore(dir, spec, lockStream, manifest, done, flag);
        }
        catch
        {
            manifest?.Dispose();
            lockStream.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes a file every shard of the run makes identically (e.g. <c>reference.json</c>, the real images' statistics),
    /// or checks that the one there is the same.
    /// </summary>
    /// <exception cref="DitCacheException">A file of that name with other content is there.</exception>
    public void WriteShared(string name, byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        string path = Path.Combine(Directory, name);
        if (File.Exists(path))
        {
            if (!File.ReadAllBytes(path).AsSpan().SequenceEqual(bytes))
            {
                throw new DitCacheException(
                    $"{path} differs from what this run computes (other data or classifier?); give another {_flag} or delete {Directory} to start the shard again");
            }

            return;
        }

        AtomicFile.Write(path, _flag, s => s.Write(bytes));
    }

    /// <summary>
    /// Records image <paramref name="index"/>: its file through a temporary file and a rename, then its manifest line,
    /// flushed to disk. An image already finished with the same bytes keeps its line; with other bytes (a run that is
    /// not deterministic) it is refused.
    /// </summary>
    /// <exception cref="DitCacheException">The file cannot be written, or a finished image would change.</exception>
    public void Write(int index, byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        string name = ItemName(index);
        string hash = Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (_done.TryGetValue(index, out ShardEntry? before))
        {
            if (before.Sha256 != hash)
            {
                throw new DitCacheException(
                    $"{Path.Combine(Directory, name)}: image {index} came out different from the finished one (sha256 {before.Sha256[..12]} vs {hash[..12]}); the run is not deterministic (same --threads and GEMM, or --deterministic, on every machine)");
            }

            return;
        }

        AtomicFile.Write(Path.Combine(Directory, name), _flag, s => s.Write(bytes));
        var entry = new ShardEntry(index, name, bytes.Length, hash);
        byte[] line = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new JsonObject
        {
            ["index"] = index,
            ["file"] = name,
            ["bytes"] = bytes.Length,
            ["sha256"] = hash,
        }) + "\n");
        _manifest.Write(line);
        _manifest.Flush(flushToDisk: true);
        _done[index] = entry;
    }

    /// <summary>Releases the lock.</summary>
    public void Dispose()
    {
        _manifest.Dispose();
        _lock.Dispose();
    }

    /// <summary>
    /// The entries of the manifest in <paramref name="dir"/>, in file order; a last line without its newline (a write
    /// cut short) is left out.
    /// </summary>
    /// <exception cref="DitCacheException">A complete line is not a manifest entry.</exception>
    public static List<ShardEntry> ReadManifest(string dir)
    {
        string path = Path.Combine(dir, ManifestFile);
        var entries = new List<ShardEntry>();
        if (!File.Exists(path))
        {
            return entries;
        }

        byte[] bytes;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            bytes = new byte[stream.Length];
            stream.ReadExactly(bytes);
        }

        int end = Array.LastIndexOf(bytes, (byte)'\n') + 1;                   // complete lines only
        string[] lines = Encoding.UTF8.GetString(bytes, 0, end).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < lines.Length; i++)
        {
            try
            {
                JsonNode node = JsonNode.Parse(lines[i]) ?? throw new JsonException("null");
                entries.Add(new ShardEntry(
                    node["index"]!.GetValue<int>(), node["file"]!.GetValue<string>(), node["bytes"]!.GetValue<long>(), node["sha256"]!.GetValue<string>()));
            }
            catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException or FormatException)
            {
                throw new DitCacheException($"{path}: line {i + 1} is not a manifest entry ({e.Message}); the file was edited or damaged: delete the shard folder {dir} and run the shard again", e);
            }
        }

        return entries;
    }

    /// <summary>The settings recorded in <paramref name="dir"/>'s <c>shard.json</c>: (kind, shard, settings).</summary>
    /// <exception cref="DitCacheException">No such file, or it is not a shard settings file.</exception>
    public static (string Kind, ShardSpec Spec, SortedDictionary<string, string> Settings) ReadSettings(string dir)
    {
        string path = Path.Combine(dir, SettingsFile);
        if (!File.Exists(path))
        {
            throw new DitCacheException($"{dir}: no {SettingsFile}; give the folder of a shard (OUT/shard-k-of-n) or the --out-dir that holds such folders", exitCode: 2);
        }

        try
        {
            JsonNode node = JsonNode.Parse(File.ReadAllText(path)) ?? throw new JsonException("null");
            if (node["format"]?.GetValue<string>() != Format)
            {
                throw new JsonException($"format is not {Format}");
            }

            var settings = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach ((string key, JsonNode? value) in node["settings"]!.AsObject())
            {
                settings[key] = value!.GetValue<string>();
            }

            return (node["kind"]!.GetValue<string>(), ShardSpec.Parse(node["shard"]!.GetValue<string>(), path), settings);
        }
        catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException or FormatException)
        {
            throw new DitCacheException($"{path}: not a ditcache shard settings file ({e.Message}); it was edited or damaged: run the shard again into a fresh folder", e);
        }
    }

    /// <summary>
    /// Writes <paramref name="dir"/>'s <c>shard.json</c>, or checks that the one there records the same kind and
    /// settings.
    /// </summary>
    /// <exception cref="DitCacheException">The folder holds a run of other settings.</exception>
    public static void CheckOrWriteSettings(string dir, ShardSpec spec, string kind, IReadOnlyDictionary<string, string> settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        string path = Path.Combine(dir, SettingsFile);
        var sorted = new SortedDictionary<string, string>(settings.ToDictionary(p => p.Key, p => p.Value), StringComparer.Ordinal);
        if (File.Exists(path))
        {
            (string oldKind, _, SortedDictionary<string, string> old) = ReadSettings(dir);
            string? differs = oldKind != kind ? $"it was made by 'ditcache {oldKind}', this is 'ditcache {kind}'" : Difference(old, sorted);
            if (differs is not null)
            {
                throw new DitCacheException(
                    $"{path}: the shard folder holds a run of other settings ({differs}); give another --out-dir, or the settings of that run to resume it");
            }

            return;
        }

        var node = new JsonObject { ["format"] = Format, ["kind"] = kind, ["shard"] = spec.ToString() };
        var obj = new JsonObject();
        foreach ((string key, string value) in sorted)
        {
            obj[key] = value;
        }

        node["settings"] = obj;
        byte[] json = Encoding.UTF8.GetBytes(node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        AtomicFile.Write(path, "--out-dir", s => s.Write(json));
    }

    /// <summary>The first setting that differs between two runs, as one phrase; null when they agree.</summary>
    public static string? Difference(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        foreach (string key in a.Keys.Union(b.Keys).Order(StringComparer.Ordinal))
        {
            string? x = a.GetValueOrDefault(key), y = b.GetValueOrDefault(key);
            if (x != y)
            {
                return $"{key}: {x ?? "(none)"} vs {y ?? "(none)"}";
            }
        }

        return null;
    }

    private static Dictionary<int, ShardEntry> LoadDone(string dir)
    {
        string path = Path.Combine(dir, ManifestFile);
        if (File.Exists(path))
        {
            // Drop a line cut short by a kill, so the next append starts on a line of its own.
            long complete;
            using (var read = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
            {
                byte[] bytes = new byte[read.Length];
                read.ReadExactly(bytes);
                complete = Array.LastIndexOf(bytes, (byte)'\n') + 1;
            }

            if (complete != new FileInfo(path).Length)
            {
                using var truncate = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.Read);
                truncate.SetLength(complete);
                truncate.Flush(flushToDisk: true);
            }
        }

        var done = new Dictionary<int, ShardEntry>();
        foreach (ShardEntry entry in ReadManifest(dir))
        {
            string file = Path.Combine(dir, entry.File);
            if (File.Exists(file) && new FileInfo(file).Length == entry.Bytes
                && Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file))) == entry.Sha256)
            {
                done[entry.Index] = entry;
            }
        }

        return done;
    }
}
