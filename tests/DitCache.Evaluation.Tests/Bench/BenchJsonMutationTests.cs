using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using DitCache.Evaluation.Bench;
using DitCache.Tensors;
using Xunit;

namespace DitCache.Evaluation.Tests.Bench;

/// <summary>
/// A damaged or hand-edited <c>results.json</c> (issue 16 item 2): every field of a valid file replaced by values of
/// the wrong type, sign or size, then resumed and drawn into reports as <c>ditcache bench</c> does. Each outcome is a
/// clean <see cref="DitCacheException"/> or a resume whose reports draw, never another exception.
/// </summary>
public sealed class BenchJsonMutationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ditcache-benchjson-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static BenchResults Valid()
    {
        BenchEntry Entry(string cache, int steps, bool reference, string timeline) => new()
        {
            Config = new BenchConfig(cache, steps, 4f) { Family = cache, Label = cache, IsReference = reference },
            ComputedSteps = timeline.Count(c => c == 'C'), Flops = 1e9, ReferenceFlops = 2e9, Seconds = [0.5, 0.6], Speedup = 1.5,
            Psnr = reference ? double.PositiveInfinity : 30, Ssim = 0.9, RelativeL2 = 0.1, FrechetDistance = double.NaN,
            Accuracy = double.NaN, CacheBytes = 1024, Timeline = timeline, ShadowPerStep = reference ? null : [double.NaN, 0.1, 0.2, double.NaN],
            ShadowPerBlock = reference ? null : [0.1, 0.2], Strip = [.. Enumerable.Range(0, 2 * 1 * 4 * 4).Select(i => (i % 255 / 127.5f) - 1f)],
        };

        return new BenchResults
        {
            Model = "m", Machine = "x", Command = "c", Samples = 4, Repeats = 1, Seed = 0, Sampler = "ddim", Threads = 1, Gemm = "managed",
            FloorFrechetDistance = double.NaN, MatchedFloorFrechetDistance = double.NaN, StripClasses = [0, 1], ImageShape = [1, 4, 4],
            Entries = [Entry("none", 4, true, "CCCC"), Entry("fora:n=2", 4, false, "CFCC")],
        };
    }

    private static IEnumerable<(JsonNode Parent, object Key)> Slots(JsonNode node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach ((string key, JsonNode? child) in o.ToList())
                {
                    yield return (o, key);
                    if (child is not null)
                    {
                        foreach (var slot in Slots(child))
                        {
                            yield return slot;
                        }
                    }
                }

                break;
            case JsonArray a:
                for (int i = 0; i < Math.Min(a.Count, 2); i++)
                {
                    yield return (a, i);
                    if (a[i] is { } child)
                    {
                        foreach (var slot in Slots(child))
                        {
                            yield return slot;
                        }
                    }
                }

                break;
        }
    }

    private static readonly Func<JsonNode?>[] s_values =
    [
        () => null, () => -1, () => 0, () => 1e308, () => "x", () => "NaN", () => "-Infinity", () => new JsonArray(), () => new JsonObject(),
        () => 100_000_000_000_000_000_000m, () => true, () => new JsonArray(1e308, -1), () => "AAAA", () => 2_147_483_647,
    ];

    [Fact]
    public void Every_mutated_field_is_resumed_cleanly_or_refused_in_one_line()
    {
        BenchResults valid = Valid();
        string text = System.Text.Encoding.UTF8.GetString(BenchJson.Serialize(valid));
        int slots = Slots(JsonNode.Parse(text)!).Count(), outcomes = 0, refused = 0;
        Assert.True(slots > 40, $"{slots} slots");
        for (int slot = 0; slot < slots; slot++)
        {
            foreach (Func<JsonNode?> value in s_values)
            {
                JsonNode root = JsonNode.Parse(text)!;
                (JsonNode parent, object key) = Slots(root).ElementAt(slot);
                if (key is string name)
                {
                    parent.AsObject()[name] = value();
                }
                else
                {
                    parent.AsArray()[(int)key] = value();
                }

                string dir = Path.Combine(_dir, "run");
                Directory.CreateDirectory(dir);
                File.WriteAllText(Path.Combine(dir, BenchSession.ResultsFile), root.ToJsonString());
                try
                {
                    BenchSession session = BenchSession.Open(dir, Valid());
                    if (session.Results.Entries.Count > 0)                              // else the bench measures before it draws
                    {
                        session.WriteReports(session.Results);
                    }
                }
                catch (DitCacheException e)
                {
                    Assert.DoesNotContain('\n', e.Message);
                    refused++;
                }

                outcomes++;
            }
        }

        Assert.Equal(slots * s_values.Length, outcomes);
        Assert.InRange(refused, outcomes / 2, outcomes);                                // most mutations are damage
    }
}
