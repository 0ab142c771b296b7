using System;
using System.CommandLine;
using System.IO;
using DitCache.Tensors;

namespace DitCache.Cli;

/// <summary>
/// The command line: parse, then hand over to a command. Errors the user can fix print one line on stderr and exit
/// with 2 (usage) or 1 (data); nothing prints a stack trace unless DITCACHE_DEBUG=1.
/// </summary>
internal static class CliApp
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, bool interactive)
    {
        RootCommand root = Build(stdout, stderr, interactive);
        ParseResult parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            string command = parsed.CommandResult.Command == root ? "ditcache" : $"ditcache {parsed.CommandResult.Command.Name}";
            stderr.WriteLine($"ditcache: error: {parsed.Errors[0].Message} (see '{command} --help')");
            return 2;
        }

        try
        {
            return parsed.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (DitCacheException e)
        {
            stderr.WriteLine($"ditcache: error: {e.Message}");
            return e.ExitCode;
        }
        catch (OutOfMemoryException e)
        {
            // Sizes are checked against the machine before the big allocations; this is what remains (a policy's cache,
            // a report), and it is still the user's to fix.
            stderr.WriteLine($"ditcache: error: out of memory ({e.Message.TrimEnd('.')}); sample fewer images at once (--classes, --batch), use fewer --threads, or run on a machine with more memory");
            return 1;
        }
        catch (Exception e) when (Environment.GetEnvironmentVariable("DITCACHE_DEBUG") != "1")
        {
            stderr.WriteLine($"ditcache: internal error: {e.GetType().Name}: {e.Message} (set DITCACHE_DEBUG=1 for a stack trace and please report it)");
            return 1;
        }
    }

    /// <summary>Every command with its flags, numbers parsed strictly (<see cref="StrictNumbers"/>).</summary>
    internal static RootCommand Build(TextWriter stdout, TextWriter stderr, bool interactive)
    {
        var root = new RootCommand("DitCache: Diffusion Transformer sampling with training-free feature caching.")
        {
            SampleCommand.Create(stdout, stderr, interactive),
            EvaluateCommand.Create(stdout, stderr, interactive),
            BenchCommand.Create(stdout, stderr, interactive),
            MergeCommand.Create(stdout),
            CalibrateCommand.Create(stdout, stderr),
            InfoCommand.Create(stdout),
        };

        StrictNumbers.Apply(root);
        return root;
    }
}
