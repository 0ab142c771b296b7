using System;
using System.Collections.Generic;
using System.Linq;
using DitCache.Tensors;

namespace DitCache.Sampling;

/// <summary>
/// The samplers reachable from <c>--sampler</c>. Adding one adds its file and one line here; the commands and the
/// harness check names against this list instead of naming samplers.
/// </summary>
public static class SchedulerRegistry
{
    private static readonly (string Name, bool UsesEta, Func<int, double, IScheduler> Create)[] s_samplers =
    [
        ("ddim", true, (steps, eta) => new Ddim(new GaussianDiffusion(steps), eta)),
        ("ddpm", false, (steps, _) => new Ddpm(new GaussianDiffusion(steps))),
    ];

    /// <summary>The sampler names, e.g. <c>ddim</c>.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. s_samplers.Select(s => s.Name)];

    /// <summary>The names as a choice for help and error text: "ddim or ddpm".</summary>
    public static string Choices { get; } = Names.Count == 1 ? Names[0] : string.Join(", ", Names.Take(Names.Count - 1)) + " or " + Names[^1];

    /// <summary>Whether <paramref name="name"/> is a sampler (exact, lower case).</summary>
    public static bool IsKnown(string name) => s_samplers.Any(s => string.Equals(s.Name, name, StringComparison.Ordinal));

    /// <summary>Whether sampler <paramref name="name"/> reads DDIM's η (the others ignore it).</summary>
    public static bool UsesEta(string name) => s_samplers.Any(s => s.UsesEta && string.Equals(s.Name, name, StringComparison.Ordinal));

    /// <summary>The usage error for an unknown sampler name.</summary>
    public static string UnknownMessage(string name) => $"--sampler '{name}' is unknown; choose {Choices}";

    /// <summary>Builds sampler <paramref name="name"/> over <paramref name="steps"/> respaced steps, with DDIM η <paramref name="eta"/> where it applies.</summary>
    /// <exception cref="DitCacheException">Unknown sampler (exit code 2).</exception>
    public static IScheduler Create(string name, int steps, double eta)
    {
        foreach ((string known, _, Func<int, double, IScheduler> create) in s_samplers)
        {
            if (string.Equals(known, name, StringComparison.Ordinal))
            {
                return create(steps, eta);
            }
        }

        throw new DitCacheException(UnknownMessage(name), exitCode: 2);
    }
}
