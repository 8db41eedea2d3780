/**
 * The command line. This is the only place that decides the exit code: commands return one,
 * known failures (RefresherError) print one line and use theirs, anything else is a bug.
 * Commands are imported when chosen, so `refresh-now` with nothing to do loads little.
 * Started by cli.ts, after it turned on Node's compile cache.
 */
import { Command, CommanderError, Option } from 'commander';
import { ExitCode, RefresherError, type ExitCodeValue } from './errors.js';
import type { GlobalOptions } from './commands/context.js';
import { VERSION } from './version.js';


/** The subcommand's options merged with the program's global ones. */
function globals<T extends GlobalOptions>(command: Command): T {
  return command.optsWithGlobals<T>();
}

function buildProgram(run: (work: () => Promise<ExitCodeValue>) => Promise<void>): Command {
  const program = new Command('session-refresher')
    .description('Keeps nginx logged in to a CouchDB-style session backend: logs in to /_session, writes the cookie into an nginx include, reloads nginx.')
    .version(VERSION)
    .addOption(new Option('-c, --config <file>', 'configuration file').env('SESSION_REFRESHER_CONFIG').default(undefined, '/etc/session-refresher/config.yaml'))
    .option('--state-dir <dir>', 'override state_dir')
    .option('-v, --verbose', 'log each step as JSON lines on stderr')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s.startsWith('error:') ? `session-refresher: ${s}` : s) });

  program
    .command('refresh-now')
    .description('log in when the cookie is missing or past half its life, write the include, check it with nginx -t, reload nginx')
    .option('-f, --force', 'log in even when the cookie is still fresh')
    .option('-s, --session <name>', 'only this session')
    .option('--json', 'print the outcome as JSON on stdout')
    .action(async (_opts, command: Command) => {
      const { refreshNow } = await import('./commands/refresh-now.js');
      await run(() => refreshNow(globals(command)));
    });

  program
    .command('status')
    .description("show each session's generation, issue and expiry times, seconds left and last result (never the cookie)")
    .option('-s, --session <name>', 'only this session')
    .option('--json', 'print as JSON on stdout')
    .action(async (_opts, command: Command) => {
      const { status } = await import('./commands/status.js');
      await run(() => status(globals(command)));
    });

  program
    .command('run')
    .description('the daemon: keep every session fresh, serve the 401 fallback endpoint, /healthz and /metrics; SIGHUP re-reads the config, SIGTERM drains and exits')
    .action(async (_opts, command: Command) => {
      const { runDaemon } = await import('./daemon/run.js');
      await run(() => runDaemon(globals(command)));
    });

  program
    .command('nginx-snippet')
    .description('print the nginx configuration for each session (upstream, locations, placeholder include), filled from the config')
    .option('-s, --session <name>', 'only this session')
    .option('-p, --part <part>', 'only one part: http, server or placeholder')
    .option('--placeholder', 'also create each missing include with the placeholder, so nginx starts before the first login')
    .option('--no-fallback', 'without the 401 fallback to the daemon (for refresh-now from cron or a timer only)')
    .action(async (_opts, command: Command) => {
      const { nginxSnippet } = await import('./commands/nginx-snippet.js');
      await run(() => nginxSnippet(globals(command)));
    });

  program
    .command('check')
    .description('check the configuration, password sources, backend reachability, include directories and nginx -t; list every problem')
    .action(async (_opts, command: Command) => {
      const { check } = await import('./commands/check.js');
      await run(() => check(globals(command)));
    });

  return program;
}

async function main(argv: string[]): Promise<ExitCodeValue> {
  let code: ExitCodeValue = ExitCode.OK;
  const program = buildProgram(async (work) => {
    code = await work();
  });
  try {
    if (argv.length <= 2) {
      program.outputHelp();
      return ExitCode.USAGE;
    }
    await program.parseAsync(argv);
    return code;
  } catch (error) {
    return reportError(error);
  }
}

function reportError(error: unknown): ExitCodeValue {
  if (error instanceof CommanderError) {
    // Help and version are exits with code 0; commander has already printed the rest.
    return error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
  }
  if (error instanceof RefresherError) {
    process.stderr.write(`session-refresher: ${error.message}\n`);
    return error.exitCode;
  }
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`session-refresher: internal error (a bug; please report it with this text):\n${detail}\n`);
  return ExitCode.INTERNAL;
}

/** Runs the program on `argv` and exits with its code. */
export async function runCli(argv: string[]): Promise<void> {
  const exitCode = await main(argv);
  // Exit explicitly: an idle keep-alive socket must not hold a cron job open.
  process.exitCode = exitCode;
  process.stdout.write('', () => process.exit(exitCode));
}
