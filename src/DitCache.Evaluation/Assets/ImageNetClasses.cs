using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using DitCache.Tensors;

namespace DitCache.Evaluation.Assets;

/// <summary>
/// The 1,000 ImageNet-1k (ILSVRC 2012) class names by class id, as class-conditional ImageNet models such as DiT
/// number them (Assets/imagenet-classes.txt, source in Assets/README.md). Each class has one or more synonyms
/// separated by ", " ("golden retriever"; "tabby, tabby cat"); a name is resolved by a case-insensitive exact match on
/// any one synonym. Synonyms never contain a comma, so a comma-separated list of ids and names is unambiguous.
/// </summary>
public static class ImageNetClasses
{
    /// <summary>The number of classes; names apply to models with exactly this many.</summary>
    public const int Count = 1000;

    private const string ResourceName = "imagenet-classes.txt";

    private static readonly Lazy<string[][]> s_synonyms = new(Load);

    /// <summary>The synonyms of class <paramref name="id"/>, in the list's order (the first is the usual name).</summary>
    public static IReadOnlyList<string> Synonyms(int id)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(id);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(id, Count);
        return s_synonyms.Value[id];
    }

    /// <summary>The class whose synonyms include <paramref name="name"/> (case-insensitive, surrounding spaces ignored).</summary>
    /// <param name="name">The name given.</param>
    /// <param name="flag">The flag that gave it, for messages.</param>
    /// <exception cref="DitCacheException">No class has that name (the message lists the closest names), or several do.</exception>
    public static int Resolve(string name, string flag = "--classes")
    {
        ArgumentNullException.ThrowIfNull(name);
        string wanted = name.Trim();
        string[][] all = s_synonyms.Value;
        int[] ids = Enumerable.Range(0, Count).Where(i => all[i].Any(s => Same(s, wanted))).ToArray();
        if (ids.Length == 1)
        {
            return ids[0];
        }

        if (ids.Length > 1)
        {
            throw new DitCacheException(
                $"{flag}: '{wanted}' names {ids.Length} ImageNet classes: {string.Join(", ", ids.Select(Describe))}; give the class id instead", exitCode: 2);
        }

        string closest = string.Join(", ", Closest(wanted, 3).Select(m => $"'{m.Name}' ({m.Id})"));
        throw new DitCacheException(
            $"{flag}: '{wanted}' is neither a class id nor an ImageNet class name (names serve 1000-class models); closest names: {closest} (matched whole, any one synonym, case-insensitive; the list is src/DitCache.Evaluation/Assets/imagenet-classes.txt, line = id + 1)", exitCode: 2);
    }

    /// <summary>"207 (golden retriever)": the id and the first synonym.</summary>
    public static string Describe(int id) => string.Create(CultureInfo.InvariantCulture, $"{id} ({Synonyms(id)[0]})");

    private static bool Same(string a, string b) => string.Equals(a, b, StringComparison.OrdinalIgnoreCase);

    /// <summary>The synonyms nearest to <paramref name="wanted"/>: ones containing it first, then by edit distance; one per class.</summary>
    private static IEnumerable<(string Name, int Id)> Closest(string wanted, int count)
    {
        string w = wanted.ToLowerInvariant();
        return s_synonyms.Value
            .SelectMany((names, id) => names.Select(n => (Name: n, Id: id)))
            .Select(m =>
            {
                string n = m.Name.ToLowerInvariant();
                double score = n.Contains(w, StringComparison.Ordinal) || w.Contains(n, StringComparison.Ordinal)
                    ? Math.Abs(n.Length - w.Length) / 1000.0
                    : Levenshtein(n, w);
                return (m.Name, m.Id, Score: score);
            })
            .OrderBy(m => m.Score).ThenBy(m => m.Id)
            .DistinctBy(m => m.Id)
            .Take(count)
            .Select(m => (m.Name, m.Id));
    }

    private static int Levenshtein(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int substitute = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                current[j] = Math.Min(substitute, Math.Min(previous[j], current[j - 1]) + 1);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }

    private static string[][] Load()
    {
        using Stream stream = typeof(ImageNetClasses).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new DitCacheException($"this build lacks the embedded {ResourceName}; rebuild from a full checkout");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        string[] lines = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length != Count)
        {
            throw new DitCacheException($"embedded {ResourceName} has {lines.Length} lines, expected {Count}; the build is broken, rebuild from a full checkout");
        }

        return [.. lines.Select(line => line.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))];
    }
}
