using System.Collections.Generic;
using DitCache.Models;

namespace DitCache.Evaluation.Quality;

/// <summary>
/// The real-data side of a quality evaluation for one kind of image: a feature extractor with a classifier head
/// (Frechet distance and class accuracy, docs/methods.md §9.2) and the real images it compares against. The
/// evaluation and the bench harness sample any DiT; they score against real data only when a quality model that
/// fits the DiT's images is given (<see cref="FmnistQuality"/> for the shipped Fashion-MNIST model).
/// </summary>
public interface IQualityModel
{
    /// <summary>What scores the images, for reports (e.g. the classifier's source).</summary>
    string Source { get; }

    /// <summary>Width of one feature vector.</summary>
    int FeatureSize { get; }

    /// <summary>Whether <see cref="Score"/> predicts a class per image (accuracy is reported only then).</summary>
    bool Classifies => true;

    /// <summary>Human-readable names of the classes, indexed by label.</summary>
    IReadOnlyList<string> ClassNames { get; }

    /// <summary>Throws a <see cref="Tensors.DitCacheException"/> (exit code 2) when the DiT's images are not what this model scores.</summary>
    void CheckModel(DitConfig config);

    /// <summary>
    /// Scores <paramref name="count"/> samples (count, C, H, W) as the DiT made them (unclamped; latents for a latent
    /// DiT): the predicted class of each (an empty array when the model does not classify), and its features
    /// (count, <see cref="FeatureSize"/>). The model maps the samples to what it scores (clamping, decoding).
    /// </summary>
    (int[] Predictions, float[] Features) Score(float[] samples, int count);

    /// <summary>The real images of <paramref name="classes"/> the samples are compared with, and the real floor.</summary>
    QualityReference Reference(IEnumerable<int> classes);

    /// <summary>
    /// The Frechet distance of <paramref name="samplesPerClass"/> real training images per class against
    /// <paramref name="reference"/> (what a perfect model scores at that sample size); null without a training split.
    /// </summary>
    double? MatchedFloor(int samplesPerClass, IReadOnlyList<int> classes, QualityReference reference);
}
