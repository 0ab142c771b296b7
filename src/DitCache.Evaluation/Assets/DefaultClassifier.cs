using System.IO;
using DitCache.Tensors;
using DitCache.Tensors.IO;

namespace DitCache.Evaluation.Assets;

/// <summary>
/// The classifier DitCache ships (models/fmnist-classifier.safetensors, see models/fmnist-classifier.md), embedded in
/// this assembly so the metrics need no path.
/// </summary>
public static class DefaultClassifier
{
    /// <summary>The resource name, also used as the source in messages.</summary>
    public const string ResourceName = "fmnist-classifier.safetensors";

    /// <summary>Whether this build embeds the classifier.</summary>
    public static bool IsEmbedded =>
        typeof(DefaultClassifier).Assembly.GetManifestResourceInfo(ResourceName) is not null;

    /// <summary>Loads the embedded checkpoint.</summary>
    /// <exception cref="DitCacheException">The assembly was built without the classifier file.</exception>
    public static TensorFile Load()
    {
        using Stream? stream = typeof(DefaultClassifier).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new DitCacheException(
                $"no embedded classifier: this build lacks models/{ResourceName}; rebuild from a full checkout or train it with tools/train/train_classifier.py");
        byte[] bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return SafeTensors.Load(bytes, "embedded:" + ResourceName);
    }
}
