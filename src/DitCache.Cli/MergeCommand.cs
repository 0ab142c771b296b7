using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using DitCache.Evaluation.Shards;

namespace DitCache.Cli;

/// <summary>
/// <c>ditcache merge DIR... --out DIR</c>: combines the shards of one sharded <c>sample</c> or <c>evaluate</c> run
/// (<see cref="ShardMerge"/>): every image once, byte for byte, and for <c>evaluate</c> the scores of the whole run
/// from summed feature statistics.
/// </summary>
internal static class MergeCommand
{
    public static Command Create(TextWriter stdout)
    {
        var inputs = new Argument<string[]>("DIR") { Description = "shard folders (OUT/shard-k-of-n), or the --out-dir that holds them", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--out") { Description = "folder for the merged run (created; every image, manifest.jsonl, shard.json, and for evaluate metrics.json)", Required = true };
        var quiet = new Option<bool>("--quiet") { Description = "no summary" };
        var png = new Option<bool>("--png") { Description = "also write every image as MERGED/png/NNNNNNN.png (the decoded image, or a 1- or 3-channel sample; as DiT's sample.py saves), the image folder FID tools read" };
        var command = new Command("merge", "Merge the shards of a sharded sample, evaluate or bench run into one folder and score the whole run.")
        {
            inputs, output, quiet, png,
        };
        command.SetAction(parse =>
        {
            ShardMergeResult r = ShardMerge.Run(parse.GetValue(inputs)!, parse.GetValue(output)!, parse.GetValue(png));
            if (!parse.GetValue(quiet))
            {
                string what = r.Kind == "bench" ? "configuration(s)" : "image(s)";
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"merged {r.Images} {what} of 'ditcache {r.Kind}' from {r.Shards} shard folder(s) into {parse.GetValue(output)}"));
                if (r.Kind == "bench")
                {
                    stdout.WriteLine($"wrote {r.Metrics} and the reports beside it");
                }

                if (r.FrechetDistance is double fd && r.Accuracy is double accuracy)
                {
                    stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  accuracy                  {accuracy:F4}"));
                    stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  FD vs test                {fd:F3}"));
                    stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  per class: {string.Join(", ", r.ClassAccuracy.Select(p => $"{p.Key} {p.Value:F3}"))}"));
                    stdout.WriteLine($"wrote {r.Metrics}");
                }
                else if (r.FrechetDistance is double fid)
                {
                    stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  FID                       {fid:F3}"));
                    stdout.WriteLine($"wrote {r.Metrics}");
                }
            }

            return 0;
        });
        return command;
    }
}
