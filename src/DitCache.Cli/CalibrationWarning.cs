using System.Collections.Generic;
using System.IO;
using System.Linq;
using DitCache.Caching;
using DitCache.Caching.Calibration;

namespace DitCache.Cli;

/// <summary>
/// A calibration beside the model that cannot be read (not a regular file, unreadable, malformed) stops a run only
/// when the run reads a section of it; a run of accelerators that read none gets this warning on stderr instead.
/// </summary>
internal static class CalibrationWarning
{
    /// <summary>Warns on <paramref name="stderr"/> when <paramref name="file"/> has a problem none of <paramref name="methods"/> would report.</summary>
    public static void Print(TextWriter stderr, CalibrationFile file, IEnumerable<string> methods)
    {
        if (file.Problem is { } problem && !methods.Any(m => CacheRegistry.Calibrated.Any(c => c.Name == m)))
        {
            stderr.WriteLine($"ditcache: warning: {problem} (ignored: no accelerator of this run reads a calibration)");
        }
    }
}
