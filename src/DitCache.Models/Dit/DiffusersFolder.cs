using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using DitCache.Tensors;
using DitCache.Tensors.IO;

namespace DitCache.Models;

/// <summary>
/// A DiT in the diffusers layout, as downloading <c>facebook/DiT-XL-2-256</c> (or <c>-512</c>) or
/// <c>DiTPipeline.save_pretrained</c> gives it: <c>model_index.json</c>, <c>transformer/</c> (<c>config.json</c> and
/// the weights), <c>vae/</c>, <c>scheduler/</c>. Also accepted: the <c>transformer/</c> folder itself.
/// </summary>
/// <param name="Root">The folder given.</param>
/// <param name="ConfigPath">transformer/config.json.</param>
/// <param name="WeightFiles">The weight files: one safetensors, the shards of a safetensors index, or one .bin.</param>
/// <param name="IndexPath">diffusion_pytorch_model.safetensors.index.json when the weights are sharded, else null.</param>
/// <param name="VaeFolder">The vae/ folder beside transformer/, or null when there is none.</param>
/// <param name="SchedulerFolder">The scheduler/ folder, or null (DitCache samples with DiT's own respacing, docs/models/dit-xl2.md).</param>
public sealed record DiffusersFolder(string Root, string ConfigPath, IReadOnlyList<string> WeightFiles, string? IndexPath,
    string? VaeFolder, string? SchedulerFolder)
{
    /// <summary>The weights file of a single-file transformer folder (diffusers' SAFETENSORS_WEIGHTS_NAME).</summary>
    public const string SafeTensorsName = "diffusion_pytorch_model.safetensors";

    /// <summary>The index of sharded safetensors weights.</summary>
    public const string IndexName = SafeTensorsName + ".index.json";

    /// <summary>The torch.save weights of older diffusers releases (WEIGHTS_NAME).</summary>
    public const string BinName = "diffusion_pytorch_model.bin";

    /// <summary>
    /// Finds the transformer config and weights under <paramref name="path"/> (a pipeline folder or its
    /// transformer/ folder) and the vae/ and scheduler/ folders beside them; reads no weights.
    /// </summary>
    /// <exception cref="DitCacheException">The folder is not a diffusers DiT: no config.json, or no weights.</exception>
    public static DiffusersFolder Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string root = Path.TrimEndingDirectorySeparator(path);
        string transformer = Path.Combine(root, "transformer");
        string? pipeline;
        if (Directory.Exists(transformer))
        {
            pipeline = root;
        }
        else if (File.Exists(Path.Combine(root, "config.json")) || HasWeights(root))
        {
            transformer = root;
            string? parent = Path.GetDirectoryName(Path.GetFullPath(root));
            pipeline = parent is not null && File.Exists(Path.Combine(parent, "model_index.json")) ? parent : null;
        }
        else if (Directory.Exists(Path.Combine(root, "snapshots")))
        {
            throw new DitCacheException(
                $"{path}: this is a Hugging Face cache entry, not a pipeline folder; give its snapshot, {Path.Combine(root, "snapshots", "<revision>")}", exitCode: 2);
        }
        else
        {
            throw new DitCacheException(
                $"{path}: not a diffusers DiT folder (no transformer/ folder and no config.json); give the folder that holds model_index.json, transformer/, vae/ and scheduler/ (a facebook/DiT-XL-2-256 download), or a .pt/.safetensors checkpoint", exitCode: 2);
        }

        string config = Path.Combine(transformer, "config.json");
        if (!File.Exists(config))
        {
            throw new DitCacheException(
                $"{config}: missing; the transformer's config (heads, patch, sizes, classes) is read from it, so download transformer/config.json with the weights");
        }

        string? index = Path.Combine(transformer, IndexName);
        IReadOnlyList<string> weights;
        if (File.Exists(Path.Combine(transformer, SafeTensorsName)))
        {
            weights = [Path.Combine(transformer, SafeTensorsName)];
            index = null;
        }
        else if (File.Exists(index))
        {
            weights = ReadIndex(index, transformer).Values.Distinct(StringComparer.Ordinal).Select(f => Path.Combine(transformer, f)).ToArray();
        }
        else if (File.Exists(Path.Combine(transformer, BinName)))
        {
            weights = [Path.Combine(transformer, BinName)];
            index = null;
        }
        else
        {
            string[] found = Directory.EnumerateFileSystemEntries(transformer).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray();
            throw new DitCacheException(
                $"{transformer}: no transformer weights (looked for {SafeTensorsName}, {IndexName}, {BinName}; the folder holds {(found.Length == 0 ? "nothing" : string.Join(", ", found))}); download the weights file too");
        }

        string? Sibling(string name) => pipeline is not null && Directory.Exists(Path.Combine(pipeline, name)) ? Path.Combine(pipeline, name) : null;
        return new DiffusersFolder(root, config, weights, index, Sibling("vae"), Sibling("scheduler"));
    }

    /// <summary>Reads the transformer config.</summary>
    /// <exception cref="DitCacheException">The config is malformed or describes no DiT.</exception>
    public DiffusersDitConfig ReadConfig() => DiffusersDitConfig.Load(ConfigPath);

    /// <summary>
    /// Loads the transformer: the config, every weight file (shards merged), the diffusers names mapped to
    /// facebookresearch/DiT's (<see cref="DiffusersDit.ToOfficialNames"/>), then <see cref="DitWeights.FromFile"/>.
    /// </summary>
    /// <param name="heads">--heads, which must agree with the config's num_attention_heads when given.</param>
    /// <param name="inputSize">--input-size, which must agree with the config's sample_size when given.</param>
    /// <param name="exclusive">The weights are for one model, packed in place (<see cref="DitWeights.Exclusive"/>).</param>
    /// <exception cref="DitCacheException">Any file is malformed, or the config and the weights disagree.</exception>
    /// <param name="precision">How to store the Linear weights (<see cref="DitWeights.Precision"/>).</param>
    public DitWeights LoadWeights(int? heads = null, int? inputSize = null, bool exclusive = false,
        WeightPrecision precision = WeightPrecision.Float32)
    {
        DiffusersDitConfig config = ReadConfig();
        if (heads is int h && h != config.Heads)
        {
            throw new DitCacheException($"--heads {h} contradicts {ConfigPath} num_attention_heads = {config.Heads}; drop --heads", exitCode: 2);
        }

        if (inputSize is int s && s != config.SampleSize)
        {
            throw new DitCacheException($"--input-size {s} contradicts {ConfigPath} sample_size = {config.SampleSize}; drop --input-size", exitCode: 2);
        }

        return DitWeights.FromFile(DiffusersDit.ToOfficialNames(LoadTensors(), config), exclusive: exclusive, precision: precision);
    }

    /// <summary>The weights under facebookresearch/DiT names with metadata num_heads and input_size from the config.</summary>
    /// <exception cref="DitCacheException">Any file is malformed, or the config and the weights disagree.</exception>
    public TensorFile LoadOfficialTensors() => DiffusersDit.ToOfficialNames(LoadTensors(), ReadConfig());

    /// <summary>The weight files' tensors under their diffusers names, shards merged.</summary>
    public TensorFile LoadTensors()
    {
        if (IndexPath is null)
        {
            return Checkpoint.Load(WeightFiles[0]);
        }

        string folder = Path.GetDirectoryName(IndexPath) ?? ".";
        IReadOnlyDictionary<string, string> map = ReadIndex(IndexPath, folder);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var dtypes = new Dictionary<string, StoredDType>(StringComparer.Ordinal);
        foreach (string shard in WeightFiles)
        {
            TensorFile part = Checkpoint.Load(shard);
            string name = Path.GetFileName(shard);
            foreach ((string key, Tensor t) in part.Tensors)
            {
                if (!map.TryGetValue(key, out string? listed) || listed != name)
                {
                    throw new DitCacheException(
                        $"{shard}: holds tensor '{key}', which {IndexPath} {(listed is null ? "does not list" : $"places in {listed}")}; the shards and the index disagree, download them again");
                }

                tensors[key] = t;
                dtypes[key] = part.SourceDTypes.TryGetValue(key, out StoredDType dt) ? dt : StoredDType.F32;
            }
        }

        if (map.Keys.FirstOrDefault(k => !tensors.ContainsKey(k)) is { } lost)
        {
            throw new DitCacheException($"{IndexPath}: lists tensor '{lost}' in {map[lost]}, which does not hold it; the shards and the index disagree, download them again");
        }

        return new TensorFile(Path.Combine(folder, SafeTensorsName) + " (sharded)", tensors, new Dictionary<string, string>(), dtypes);
    }

    private static bool HasWeights(string folder) =>
        File.Exists(Path.Combine(folder, SafeTensorsName)) || File.Exists(Path.Combine(folder, IndexName)) || File.Exists(Path.Combine(folder, BinName));

    /// <summary>The weight_map of a safetensors index: tensor name → shard file name (in the same folder).</summary>
    private static Dictionary<string, string> ReadIndex(string path, string folder)
    {
        try
        {
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(path));
            if (!doc.RootElement.TryGetProperty("weight_map", out JsonElement map) || map.ValueKind != JsonValueKind.Object)
            {
                throw new DitCacheException($"{path}: no \"weight_map\" object; a safetensors index maps each tensor name to its shard");
            }

            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (JsonProperty p in map.EnumerateObject())
            {
                string? file = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : null;
                if (string.IsNullOrEmpty(file) || file != Path.GetFileName(file))
                {
                    throw new DitCacheException($"{path}: weight_map entry '{p.Name}' is {p.Value.GetRawText()}; expected the file name of a shard in the same folder");
                }

                if (!File.Exists(Path.Combine(folder, file)))
                {
                    throw new DitCacheException($"{path}: shard {file} (for '{p.Name}') is missing from {folder}; download every shard the index lists");
                }

                result[p.Name] = file;
            }

            return result;
        }
        catch (JsonException e)
        {
            throw new DitCacheException($"{path}: not valid JSON ({e.Message}); download the index again", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DitCacheException($"{path}: cannot read the weights index ({e.Message})", e);
        }
    }
}
