using System;
using System.Collections.Generic;
using System.Linq;
using DitCache.Evaluation.Data;
using DitCache.Evaluation.Metrics;
using DitCache.Models;
using DitCache.Tensors;

namespace DitCache.Evaluation.Quality;

/// <summary>
/// The quality model of the shipped Fashion-MNIST DiT: the shipped classifier (models/fmnist-classifier.md) scores
/// 28×28 single-channel images; its 128-d features are compared with the Fashion-MNIST test images, and the
/// training images give the matched floor.
/// </summary>
public sealed class FmnistQuality : IQualityModel
{
    private readonly FmnistClassifier _classifier;
    private readonly FashionMnist? _test;
    private readonly FashionMnist? _train;

    /// <summary>
    /// Scores with <paramref name="classifier"/>; <paramref name="test"/> supplies the reference images
    /// (<see cref="Reference(IEnumerable{int})"/>), <paramref name="train"/> those of the matched floor. Either may be null when the
    /// caller computes the reference itself or needs no matched floor.
    /// </summary>
    public FmnistQuality(FmnistClassifier classifier, FashionMnist? test = null, FashionMnist? train = null)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        _classifier = classifier;
        _test = test;
        _train = train;
    }

    /// <inheritdoc/>
    public string Source => _classifier.Source;

    /// <inheritdoc/>
    public int FeatureSize => FmnistClassifier.FeatureSize;

    /// <inheritdoc/>
    public IReadOnlyList<string> ClassNames => FashionMnist.ClassNames;

    /// <inheritdoc/>
    public void CheckModel(DitConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.InChannels != 1 || config.InputSize != FashionMnist.ImageSize || config.NumClasses < FashionMnist.ClassCount)
        {
            throw new DitCacheException(
                $"the quality metrics score 28x28 single-channel Fashion-MNIST images with 10 classes, but this model makes {config.InputSize}x{config.InputSize}x{config.InChannels} images of {config.NumClasses} classes",
                exitCode: 2);
        }
    }

    /// <inheritdoc/>
    /// <remarks>The samples are clamped to [−1, 1], the image range, as saving a PNG would.</remarks>
    public (int[] Predictions, float[] Features) Score(float[] samples, int count)
    {
        ArgumentNullException.ThrowIfNull(samples);
        float[] clamped = new float[samples.Length];
        for (int i = 0; i < samples.Length; i++)
        {
            clamped[i] = Math.Clamp(samples[i], -1f, 1f);
        }

        (float[] logits, float[] features) = _classifier.Forward(clamped, count);
        return (FmnistClassifier.Predict(logits), features);
    }

    /// <inheritdoc/>
    /// <exception cref="InvalidOperationException">Built without the test split.</exception>
    public QualityReference Reference(IEnumerable<int> classes) =>
        Reference(_classifier, _test ?? throw new InvalidOperationException("the reference needs the test split; pass it to the constructor"), classes);

    /// <inheritdoc/>
    public double? MatchedFloor(int samplesPerClass, IReadOnlyList<int> classes, QualityReference reference)
    {
        ArgumentNullException.ThrowIfNull(classes);
        ArgumentNullException.ThrowIfNull(reference);
        if (_train is null)
        {
            return null;
        }

        var indices = new List<int>(samplesPerClass * classes.Count);
        ReadOnlySpan<byte> labels = _train.Labels;
        foreach (int y in classes)
        {
            int taken = 0;
            for (int i = 0; i < labels.Length && taken < samplesPerClass; i++)
            {
                if (labels[i] == y)
                {
                    indices.Add(i);
                    taken++;
                }
            }
        }

        float[] features = Features(_classifier, _train, indices);
        FeatureStatistics real = FeatureStatistics.FromFeatures(features, indices.Count, FmnistClassifier.FeatureSize);
        return Metrics.FrechetDistance.Compute(real, reference.Statistics);
    }

    /// <summary>
    /// Features of the images of <paramref name="dataset"/> (normally the test split) whose label is in
    /// <paramref name="classes"/>, in dataset order, and the floor between the first and second half of them.
    /// </summary>
    /// <exception cref="ArgumentException">A class is outside 0..9, or fewer than 4 images match.</exception>
    public static QualityReference Reference(FmnistClassifier classifier, FashionMnist dataset, IEnumerable<int> classes)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(classes);
        int[] wanted = [.. classes.Distinct().Order()];
        if (wanted.Any(c => c < 0 || c >= FashionMnist.ClassCount))
        {
            throw new ArgumentException($"classes must be in 0..{FashionMnist.ClassCount - 1}", nameof(classes));
        }

        var indices = new List<int>(dataset.Count);
        ReadOnlySpan<byte> labels = dataset.Labels;
        for (int i = 0; i < labels.Length; i++)
        {
            if (Array.BinarySearch(wanted, labels[i]) >= 0)
            {
                indices.Add(i);
            }
        }

        float[] features = Features(classifier, dataset, indices);
        return QualityReference.FromFeatures(features, indices.Count, FmnistClassifier.FeatureSize, wanted, dataset.Source);
    }

    /// <summary>Classifier features (count, 128) of the images at <paramref name="indices"/>, in that order.</summary>
    internal static float[] Features(FmnistClassifier classifier, FashionMnist dataset, IReadOnlyList<int> indices)
    {
        const int Chunk = 1000;
        int d = FmnistClassifier.FeatureSize, pixels = FashionMnist.Pixels;
        float[] features = new float[indices.Count * d];
        float[] images = new float[Math.Min(Chunk, indices.Count) * pixels];
        for (int start = 0; start < indices.Count; start += Chunk)
        {
            int b = Math.Min(Chunk, indices.Count - start);
            for (int i = 0; i < b; i++)
            {
                dataset.CopyImages(indices[start + i], 1, images.AsSpan(i * pixels, pixels));
            }

            classifier.Forward(images.AsSpan(0, b * pixels), b, [], features.AsSpan(start * d, b * d));
        }

        return features;
    }
}
