using System;
using System.IO;
using System.Linq;
using DitCache.Tensors;
using DitCache.Tensors.IO;

namespace DitCache.Evaluation.Metrics;

/// <summary>
/// Reference statistics for FID from an <c>.npz</c> file as the FID tools write them: <c>mu</c> (2048) and
/// <c>sigma</c> (2048, 2048) of the pool3 features of a real image set. ADM's reference batches (e.g.
/// <c>VIRTUAL_imagenet256_labeled.npz</c>, which the DiT and FoCa papers score against) hold them next to the images
/// (<c>arr_0</c>, never read here) and the spatial statistics (<c>mu_s</c>, <c>sigma_s</c>, unused); pytorch-fid's
/// <c>--save-stats</c> files hold just the two.
/// </summary>
public static class FidStatistics
{
    /// <summary>Reads <c>mu</c> and <c>sigma</c> of <paramref name="path"/> as statistics of <paramref name="dim"/>-d features (count unknown: 0).</summary>
    /// <exception cref="DitCacheException">The file is missing or not an .npz with those arrays, a shape differs, or a value is not finite.</exception>
    public static FeatureStatistics Load(string path, int dim)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            throw new DitCacheException($"--fid-stats {path}: no such file; give an .npz with mu [{dim}] and sigma [{dim}, {dim}] (ADM's VIRTUAL_imagenet256_labeled.npz, or pytorch-fid --save-stats)", exitCode: 2);
        }

        string[] held = [.. Npz.List(path).Select(e => e.Name)];
        string? missing = !held.Contains("mu") ? "mu" : !held.Contains("sigma") ? "sigma" : null;
        if (missing is not null)
        {
            throw new DitCacheException(
                $"--fid-stats {path}: has no array '{missing}' (it holds {(held.Length == 0 ? "none" : string.Join(", ", held))}); give FID statistics: an .npz with mu [{dim}] and sigma [{dim}, {dim}] (ADM's reference batch, or pytorch-fid --save-stats)",
                exitCode: 2);
        }

        NpyArray mu = Npz.Read(path, "mu");
        NpyArray sigma = Npz.Read(path, "sigma");
        if (mu.Data.Length != dim || mu.Shape.Length != 1)
        {
            throw new DitCacheException($"--fid-stats {path}: 'mu' has shape {Tensor.FormatShape(mu.Shape)} but the features are {dim}-dimensional; give statistics of the FID Inception's pool3 features ([{dim}] and [{dim}, {dim}])", exitCode: 2);
        }

        if (sigma.Shape.Length != 2 || sigma.Shape[0] != dim || sigma.Shape[1] != dim)
        {
            throw new DitCacheException($"--fid-stats {path}: 'sigma' has shape {Tensor.FormatShape(sigma.Shape)} but needs [{dim}, {dim}]; give statistics of the FID Inception's pool3 features", exitCode: 2);
        }

        int bad = Array.FindIndex(mu.Data, v => !double.IsFinite(v));
        int badSigma = Array.FindIndex(sigma.Data, v => !double.IsFinite(v));
        if (bad >= 0 || badSigma >= 0)
        {
            throw new DitCacheException(
                $"--fid-stats {path}: {(bad >= 0 ? $"'mu'[{bad}]" : $"'sigma'[{badSigma / dim}, {badSigma % dim}]")} is not finite; the file is damaged: download or compute it again",
                exitCode: 2);
        }

        return new FeatureStatistics(mu.Data, sigma.Data, dim, 0);
    }
}
