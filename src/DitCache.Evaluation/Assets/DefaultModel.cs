using System.IO;
using DitCache.Caching.Calibration;
using DitCache.Models;
using DitCache.Tensors;
using DitCache.Tensors.IO;

namespace DitCache.Evaluation.Assets;

/// <summary>
/// The model DitCache ships: a class-conditional DiT trained on Fashion-MNIST (models/fmnist-dit.safetensors, see
/// models/README.md), embedded in this assembly so <c>ditcache sample</c> works with no <c>--model</c>.
/// </summary>
public static class DefaultModel
{
    /// <summary>The resource name, also used as the model's source in messages and reports.</summary>
    public const string ResourceName = "fmnist-dit.safetensors";

    /// <summary>The embedded calibration's resource name (models/fmnist-dit.calibration.json).</summary>
    public const string CalibrationResourceName = "fmnist-dit" + CalibrationFile.Suffix;

    /// <summary>The repository path of the shipped model, for <c>ditcache calibrate --model</c> hints.</summary>
    public const string RepositoryPath = "models/" + ResourceName;

    /// <summary>
    /// The calibration of the model at <paramref name="modelPath"/>: the file beside it
    /// (<see cref="CalibrationFile.PathFor"/>), or for the embedded default model (null path) the embedded copy of
    /// models/fmnist-dit.calibration.json. A missing file gives an empty calibration whose errors name where it looked;
    /// a malformed one is reported when an accelerator reads its section (<see cref="CalibrationFile.Deferred"/>).
    /// </summary>
    /// <exception cref="DitCacheException">The embedded calibration is malformed (a broken build).</exception>
    public static CalibrationFile LoadCalibration(string? modelPath)
    {
        if (modelPath is not null)
        {
            return CalibrationFile.Deferred(CalibrationFile.PathFor(modelPath), modelPath);
        }

        string source = "embedded:" + CalibrationResourceName;
        using Stream? stream = typeof(DefaultModel).Assembly.GetManifestResourceStream(CalibrationResourceName);
        if (stream is null)
        {
            return CalibrationFile.Missing(source + " (this build has no models/" + CalibrationResourceName + ")", RepositoryPath);
        }

        byte[] bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return CalibrationFile.Parse(bytes, source, RepositoryPath);
    }

    /// <summary>Loads the embedded checkpoint.</summary>
    /// <exception cref="DitCacheException">The assembly was built without the model file.</exception>
    public static TensorFile Load()
    {
        using Stream? stream = typeof(DefaultModel).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new DitCacheException(
                $"no embedded default model: this build lacks models/{ResourceName}; pass --model PATH or rebuild from a full checkout");
        byte[] bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return SafeTensors.Load(bytes, "embedded:" + ResourceName);
    }

    /// <summary>
    /// Loads DiT weights from <paramref name="path"/> (safetensors or a PyTorch .pt state_dict, or a folder in the
    /// diffusers layout, <see cref="DiffusersFolder"/>), or the embedded default model when <paramref name="path"/> is null.
    /// By default the weights are for one <see cref="DitModel"/>, whose GEMM packs them in place
    /// (<see cref="DitWeights.Exclusive"/>: one copy of the weights in memory, not two); pass
    /// <paramref name="exclusive"/> false to build several models from them. <paramref name="precision"/> stores the
    /// Linear weights at 16 bits (<see cref="DitWeights.Precision"/>; exclusive only).
    /// </summary>
    public static DitWeights LoadWeights(string? path, int? heads = null, int? inputSize = null, bool exclusive = true,
        WeightPrecision precision = WeightPrecision.Float32)
    {
        if (path is not null && Directory.Exists(path))
        {
            return DiffusersFolder.Open(path).LoadWeights(heads, inputSize, exclusive, precision);
        }

        TensorFile file = path is null ? Load() : Checkpoint.Load(path);
        return DitWeights.FromFile(file, heads, inputSize, exclusive, precision);
    }
}
