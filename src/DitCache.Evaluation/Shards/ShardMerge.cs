using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DitCache.Evaluation.Metrics;
using DitCache.Tensors;
using DitCache.Tensors.IO;

namespace DitCache.Evaluation.Shards;

/// <summary>What <see cref="ShardMerge.Run"/> combined.</summary>
/// <param name="Kind">The command that made the images.</param>
/// <param name="Images">Images in the merged run.</param>
/// <param name="Shards">Shard folders merged.</param>
/// <param name="Accuracy">Fraction of images the classifier assigns to the requested class; null for images without scores.</param>
/// <param name="ClassAccuracy">Accuracy per class label; empty for images without scores.</param>
/// <param name="FrechetDistance">FD of the merged feature statistics to the reference; null for images without scores.</param>
/// <param name="Metrics">The path of the metrics file written, or null.</param>
public sealed record ShardMergeResult(string Kind, int Images, int Shards, double? Accuracy, IReadOnlyDictionary<int, double> ClassAccuracy,
    double? FrechetDistance, string? Metrics);

/// <summary>
/// <c>ditcache merge</c>: combines the folders of the shards of one run into one folder that holds every image (the
/// same files, byte for byte), one manifest and, for scored runs, the metrics. The feature statistics are merged from
/// summable sums (<see cref="FeatureSums"/>: count, sum, sum of outer products, float64), one per shard, so the
/// merged Frechet distance is a one-process run's up to float64 round-off; accuracy is merged from counts. Shards of
/// other settings or models (their <c>shard.json</c>), images missing or given twice are refused with one line.
/// </summary>
public static class ShardMerge
{
    /// <summary>The metrics file of a merged scored run.</summary>
    public const string MetricsFile = "metrics.json";

    /// <summary>The real images' statistics every scored shard writes.</summary>
    public const string ReferenceFile = "reference.json";

    /// <summary>
    /// The shard folders <paramref name="inputs"/> name: a folder with a <c>shard.json</c> is one; a folder holding
    /// <c>shard-k-of-n</c> folders (a shared <c>--out-dir</c>) stands for them all.
    /// </summary>
    /// <exception cref="DitCacheException">An input is missing or holds no shard.</exception>
    public static List<string> ShardFolders(IEnumerable<string> inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var folders = new List<string>();
        foreach (string input in inputs)
        {
            if (!Directory.Exists(input))
            {
                throw new DitCacheException($"merge: {input} is not a folder; give the shard folders (OUT/shard-k-of-n) or the --out-dir that holds them", exitCode: 2);
            }

            if (File.Exists(Path.Combine(input, ShardStore.SettingsFile)))
            {
                folders.Add(Path.GetFullPath(input));
                continue;
            }

            string[] shards = [.. Directory.GetDirectories(input, "shard-*-of-*").Where(d => File.Exists(Path.Combine(d, ShardStore.SettingsFile))).Order(StringComparer.Ordinal)];
            if (shards.Length == 0)
            {
                throw new DitCacheException($"merge: {input} holds no shard (no {ShardStore.SettingsFile}, no shard-k-of-n folders); give the --out-dir of a sharded run", exitCode: 2);
            }

            folders.AddRange(shards.Select(Path.GetFullPath));
        }

        return folders;
    }

    /// <summary>The folder of PNG files <see cref="Run"/> writes with <c>png</c>.</summary>
    public const string PngFolder = "png";

    /// <summary>
    /// Merges <paramref name="inputs"/> into <paramref name="outDir"/> (see the type summary). With
    /// <paramref name="png"/>, also writes each image as <c>png/NNNNNNN.png</c> (the decoded image, else a 1- or
    /// 3-channel sample; <c>(x + 1)/2</c> clamped to [0, 1], times 255, rounded, as DiT's sample.py saves), the image
    /// folder FID tools read.
    /// </summary>
    /// <exception cref="DitCacheException">Inputs of different runs, missing or duplicated images, a damaged file, an
    /// output folder that is one of the inputs, or PNGs asked of latents without decoded images.</exception>
    public static ShardMergeResult Run(IReadOnlyList<string> inputs, string outDir, bool png = false)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(outDir);
        List<string> folders = ShardFolders(inputs);
        string output = Path.GetFullPath(outDir);
        if (folders.Any(f => f == output || output.StartsWith(f + Path.DirectorySeparatorChar, StringComparison.Ordinal)))
        {
            throw new DitCacheException($"merge --out {outDir} is (inside) one of the shard folders; write the merged run to a folder of its own", exitCode: 2);
        }

        // 1. One run: the same kind and settings everywhere.
        (string kind, _, SortedDictionary<string, string> settings) = ShardStore.ReadSettings(folders[0]);
        foreach (string folder in folders.Skip(1))
        {
            (string k, _, SortedDictionary<string, string> s) = ShardStore.ReadSettings(folder);
            string? differs = k != kind ? $"made by 'ditcache {k}' vs 'ditcache {kind}'" : ShardStore.Difference(s, settings);
            if (differs is not null)
            {
                throw new DitCacheException(
                    $"merge: {Path.Combine(folder, ShardStore.SettingsFile)} is of another run than {Path.Combine(folders[0], ShardStore.SettingsFile)} ({differs}); merge only the shards of one run");
            }
        }

        if (File.Exists(Path.Combine(output, ShardStore.SettingsFile)))
        {
            (string oldKind, _, SortedDictionary<string, string> old) = ShardStore.ReadSettings(output);
            string? differs = oldKind != kind ? $"made by 'ditcache {oldKind}'" : ShardStore.Difference(old, settings);
            if (differs is not null)
            {
                throw new DitCacheException(
                    $"merge --out {outDir} holds the merge of another run ({differs}); give an empty or new folder so its files do not mix", exitCode: 2);
            }
        }

        if (kind == "bench")
        {
            return png ? throw new DitCacheException("merge --png: bench shards keep no images (their reports hold the image strips); drop --png", exitCode: 2)
                : MergeBench(folders, settings, output);
        }

        int images = int.Parse(settings["images"], CultureInfo.InvariantCulture);
        int batch = int.Parse(settings["batch"], CultureInfo.InvariantCulture);

        // 2. Every image exactly once.
        var owner = new Dictionary<int, (string Folder, ShardEntry Entry)>();
        foreach (string folder in folders)
        {
            var latest = new Dictionary<int, ShardEntry>();
            foreach (ShardEntry entry in ShardStore.ReadManifest(folder))
            {
                latest[entry.Index] = entry;                                     // a redone image: its last line
            }

            foreach (ShardEntry entry in latest.Values.OrderBy(e => e.Index))
            {
                if (entry.Index < 0 || entry.Index >= images)
                {
                    throw new DitCacheException($"merge: {Path.Combine(folder, ShardStore.ManifestFile)} lists image {entry.Index} but the run has images 0..{images - 1}; the manifest was edited: run that shard again into a fresh folder");
                }

                if (owner.TryGetValue(entry.Index, out var first))
                {
                    throw new DitCacheException(
                        $"merge: image {entry.Index} is in both {first.Folder} and {folder} (overlapping shards, e.g. of different shard counts, or a folder given twice); merge each image's shard once");
                }

                owner[entry.Index] = (folder, entry);
            }
        }

        int[] missing = [.. Enumerable.Range(0, images).Where(i => !owner.ContainsKey(i))];
        if (missing.Length > 0)
        {
            var spec = ShardStore.ReadSettings(folders[0]).Spec;
            string[] shards = [.. missing.Select(i => i / batch).Distinct().Select(b => $"{ShardSpec.OwnerOf(b, spec.Count)}/{spec.Count}").Distinct().Take(8)];
            throw new DitCacheException(
                $"merge: {missing.Length} of {images} images are missing (first: {string.Join(", ", missing.Take(5))}); finish the shards that run them (--shard {string.Join(", ", shards)} with {spec.Count} shards) and merge again");
        }

        // 3. Read every image (checking its hash), add its scores, and stage the merged folder.
        Directory.CreateDirectory(output);
        if (png)
        {
            Directory.CreateDirectory(Path.Combine(output, PngFolder));
        }

        bool scored = kind == "evaluate";
        string[] lines = new string[images];                                          // the manifest, in index order
        int featureSize = 0;
        var total = new FeatureSums(1);
        bool first0 = true;
        var correct = new SortedDictionary<int, (int Correct, int Count)>();
        byte[]? reference = null;
        foreach (IGrouping<string, int> group in Enumerable.Range(0, images).GroupBy(i => owner[i].Folder))
        {
            FeatureSums? shardSums = null;                                             // this shard's sums
            foreach (int i in group)
            {
                (string folder, ShardEntry entry) = owner[i];
                string path = Path.Combine(folder, entry.File);
                byte[] bytes = File.Exists(path) ? File.ReadAllBytes(path)
                    : throw new DitCacheException($"merge: {path} is missing though {Path.Combine(folder, ShardStore.ManifestFile)} lists it; run that shard again to redo it");
                string hash = Convert.ToHexStringLower(SHA256.HashData(bytes));
                if (hash != entry.Sha256)
                {
                    throw new DitCacheException($"merge: {path} does not match its manifest line (sha256 {hash[..12]}, recorded {entry.Sha256[..12]}); the file was damaged: delete it and run that shard again");
                }

                if (scored)
                {
                    TensorFile file = SafeTensors.Load(bytes, path);
                    Tensor features = file.Read("features");
                    if (shardSums is null)
                    {
                        featureSize = features.Data.Length;
                        shardSums = new FeatureSums(featureSize);
                        if (first0)
                        {
                            total = new FeatureSums(featureSize);
                            first0 = false;
                        }
                    }

                    shardSums.Add(features.Data);
                    if (file.Metadata.TryGetValue("prediction", out string? predicted))      // the FID Inception predicts no class
                    {
                        int label = int.Parse(file.Metadata["label"], CultureInfo.InvariantCulture);
                        int prediction = int.Parse(predicted, CultureInfo.InvariantCulture);
                        (int c, int n) = correct.GetValueOrDefault(label);
                        correct[label] = (c + (prediction == label ? 1 : 0), n + 1);
                    }
                }

                string name = ShardStore.ItemName(i);
                AtomicFile.Write(Path.Combine(output, name), "merge --out", s => s.Write(bytes));
                if (png)
                {
                    WritePng(bytes, path, Path.Combine(output, PngFolder, Path.ChangeExtension(name, ".png")));
                }
                lines[i] = JsonSerializer.Serialize(new JsonObject { ["index"] = i, ["file"] = name, ["bytes"] = bytes.Length, ["sha256"] = hash }) + "\n";
            }

            if (shardSums is not null)
            {
                total.Add(shardSums);                                                  // summable: shard by shard
            }

            if (scored)
            {
                string refPath = Path.Combine(group.Key, ReferenceFile);
                byte[] refBytes = File.Exists(refPath) ? File.ReadAllBytes(refPath)
                    : throw new DitCacheException($"merge: {refPath} is missing; every evaluate shard writes it when it starts: run that shard again");
                if (reference is not null && !reference.AsSpan().SequenceEqual(refBytes))
                {
                    throw new DitCacheException($"merge: {refPath} differs from the other shards' {ReferenceFile} (other real data or classifier); merge only shards scored against the same data");
                }

                reference = refBytes;
            }
        }

        var merged = new JsonObject { ["format"] = ShardStore.Format, ["kind"] = kind, ["shard"] = ShardSpec.Whole.ToString() };
        var settingsNode = new JsonObject();
        foreach ((string key, string value) in settings)
        {
            settingsNode[key] = value;
        }

        merged["settings"] = settingsNode;
        using (var outputs = new AtomicOutputs())
        {
            byte[] manifest = Encoding.UTF8.GetBytes(string.Concat(lines));
            outputs.Add(Path.Combine(output, ShardStore.ManifestFile), "merge --out", s => s.Write(manifest));
            byte[] settingsJson = Encoding.UTF8.GetBytes(merged.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            outputs.Add(Path.Combine(output, ShardStore.SettingsFile), "merge --out", s => s.Write(settingsJson));
            if (!scored || reference is null)
            {
                outputs.Commit();
                return new ShardMergeResult(kind, images, folders.Count, null, new Dictionary<int, double>(), null, null);
            }

            // 4. Scores: accuracy from counts, FD from the summed statistics.
            ReferenceStatistics real = ReferenceStatistics.Parse(reference, Path.Combine(folders[0], ReferenceFile));
            FeatureStatistics generated = total.ToStatistics();
            double fd = Metrics.FrechetDistance.Compute(generated, real.Statistics);
            int classified = correct.Values.Sum(v => v.Count);
            if (classified != 0 && classified != images)
            {
                throw new DitCacheException($"merge: {classified} of {images} images carry a class prediction; shards scored by different quality models cannot be merged");
            }

            double? accuracy = classified == 0 ? null : (double)correct.Values.Sum(v => v.Correct) / images;
            var classAccuracy = correct.ToDictionary(p => p.Key, p => (double)p.Value.Correct / p.Value.Count);
            var perClass = new JsonObject();
            foreach ((int label, double a) in classAccuracy)
            {
                perClass[label.ToString(CultureInfo.InvariantCulture)] = a;
            }

            var metrics = new JsonObject
            {
                ["kind"] = kind,
                ["images"] = images,
                ["shards"] = folders.Count,
                ["accuracy"] = accuracy,
                ["class_accuracy"] = perClass,
                ["frechet_distance"] = fd,
                ["reference_images"] = real.Statistics.Count,
                ["floor_frechet_distance"] = double.IsNaN(real.Floor) ? null : real.Floor,
                ["reference_source"] = real.Source,
                ["settings"] = settingsNode.DeepClone(),
            };
            byte[] metricsJson = Encoding.UTF8.GetBytes(metrics.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            string metricsPath = Path.Combine(output, MetricsFile);
            outputs.Add(metricsPath, "merge --out", s => s.Write(metricsJson));
            outputs.Add(Path.Combine(output, ReferenceFile), "merge --out", s => s.Write(reference));
            outputs.Commit();
            return new ShardMergeResult(kind, images, folders.Count, accuracy, classAccuracy, fd, metricsPath);
        }
    }

    private static void WritePng(byte[] bytes, string source, string target)
    {
        TensorFile file = SafeTensors.Load(bytes, source);
        Tensor image = file.Entries.ContainsKey("image") ? file.Read("image") : file.Read("sample");
        if (image.Shape[1] is not (1 or 3))
        {
            throw new DitCacheException(
                $"merge --png: {source} holds a {image.Shape[1]}-channel latent and no decoded image; run the shards with --vae (or a diffusers --model folder with vae/) to decode them, or drop --png", exitCode: 2);
        }

        byte[] encoded = Reports.Png.EncodeGrid(image, 1, padding: 0);
        AtomicFile.Write(target, "merge --png", s => s.Write(encoded));
    }

    /// <summary>
    /// Bench shards: every configuration of the plan (recorded in <c>shard.json</c>) from the one shard that measured
    /// it, the full-compute references from the first shard (each shard measured them for itself), into one
    /// <c>results.json</c> and the reports. Each entry keeps the wall speedup its shard measured against its own
    /// reference, on its own machine.
    /// </summary>
    private static ShardMergeResult MergeBench(List<string> folders, SortedDictionary<string, string> settings, string output)
    {
        var loaded = folders.Select(f => (Folder: f, Results: Bench.BenchJson.Load(Path.Combine(f, Bench.BenchSession.ResultsFile)))).ToList();
        foreach (var (folder, results) in loaded.Skip(1))
        {
            Bench.BenchJson.CheckResumable(loaded[0].Results, results, Path.Combine(folder, Bench.BenchSession.ResultsFile));
        }

        var entries = new List<Bench.BenchEntry>();
        foreach (string key in settings["plan"].Split(';'))
        {
            var found = loaded.Select(l => (l.Folder, Entry: l.Results.Entries.Find(e => e.Config.Key == key)))
                .Where(p => p.Entry is not null).ToList();
            if (found.Count == 0)
            {
                throw new DitCacheException(
                    $"merge: configuration '{key}' of the plan is in none of the shards' results.json; finish the shard that measures it (rerun it: it resumes) and merge again");
            }

            if (found.Count > 1 && !found[0].Entry!.Config.IsReference)
            {
                throw new DitCacheException(
                    $"merge: configuration '{key}' was measured by both {found[0].Folder} and {found[1].Folder} (shards of different counts, or a folder given twice); merge each configuration's shard once");
            }

            entries.Add(found[0].Entry!);
        }

        Bench.BenchResults first = loaded[0].Results;
        var merged = new Bench.BenchResults
        {
            Model = first.Model,
            Machine = string.Join(" | ", loaded.Select(l => l.Results.Machine).Distinct()),
            Command = first.Command,
            Samples = first.Samples,
            Repeats = loaded.Max(l => l.Results.Repeats),
            Seed = first.Seed,
            Sampler = first.Sampler,
            Threads = first.Threads,
            Gemm = first.Gemm,
            FloorFrechetDistance = first.FloorFrechetDistance,
            MatchedFloorFrechetDistance = first.MatchedFloorFrechetDistance,
            StripClasses = first.StripClasses,
            ClassNames = first.ClassNames,
            ImageShape = first.ImageShape,
            Entries = entries,
        };
        string resultsPath = Path.Combine(output, Bench.BenchSession.ResultsFile);
        Directory.CreateDirectory(output);
        AtomicFile.Write(resultsPath, "merge --out", s => s.Write(Bench.BenchJson.Serialize(merged)));
        Bench.BenchSession session = Bench.BenchSession.Open(output, merged, "merge --out");
        session.WriteReports(session.Results);
        return new ShardMergeResult("bench", entries.Count, folders.Count, null, new Dictionary<int, double>(), null, resultsPath);
    }
}
