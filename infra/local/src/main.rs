//! `canopy-local`: the local stack's command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use canopy_local::demo::{self, FleetOptions};
use canopy_local::stack::{Stack, StackOptions, find_template};
use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "canopy-local",
    version,
    about = "Canopy's local stack: AWS's part, played on loopback"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct StackArgs {
    /// The SAM template whose resources, functions and rules to run.
    #[arg(long)]
    template: Option<PathBuf>,
    /// Use this moto server instead of starting one.
    #[arg(long)]
    moto: Option<String>,
    #[arg(long, default_value_t = 1883)]
    mqtt_port: u16,
    #[arg(long, default_value_t = 8080)]
    api_port: u16,
    /// Where `make watch` finds the running stack's environment.
    #[arg(long, default_value = "target/canopy-local.env")]
    env_file: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run an MQTT broker on loopback until stopped.
    Broker {
        #[arg(long, default_value = "127.0.0.1:1883")]
        listen: SocketAddr,
    },
    /// Start the local stack and keep it up until Ctrl-C.
    Up {
        #[command(flatten)]
        stack: StackArgs,
        /// Vehicles to seed straight into the tables first, as the telemetry
        /// and alerts functions would have written them (each listed, its
        /// latest state, one alert): the console at fleet scale.
        #[arg(long, default_value_t = 0)]
        fleet: usize,
    },
    /// Move a running local stack's dead letters back to their source queue
    /// (after the cause is fixed; in AWS: `aws sqs start-message-move-task`).
    Redrive {
        /// The running stack's moto endpoint (`canopy-local up` prints it).
        #[arg(long)]
        moto: String,
        /// The dead-letter queue, by its name in the template.
        #[arg(long, default_value = "RawObjectsDeadLetterQueue")]
        queue: String,
        #[arg(long)]
        template: Option<PathBuf>,
    },
    /// The local stack, a simulated fleet through it, and a summary.
    Demo {
        #[command(flatten)]
        stack: StackArgs,
        #[arg(long, default_value_t = 5)]
        vehicles: usize,
        /// Simulated minutes per vehicle.
        #[arg(long, default_value_t = 10)]
        minutes: u32,
        /// Exit after the summary instead of serving the API until Ctrl-C.
        #[arg(long)]
        once: bool,
    },
    /// The standard workload's cost per vehicle-month, from requests, messages,
    /// bytes and durations measured on stacks of its own (`make cost`).
    Cost {
        #[arg(long, default_value = "template.yaml")]
        template: PathBuf,
        #[arg(long, default_value = "infra/prices.toml")]
        prices: PathBuf,
        #[arg(long, default_value = "dbc/ev_powertrain.dbc")]
        dbc: PathBuf,
        #[arg(long, default_value_t = 3)]
        vehicles: usize,
        /// Simulated seconds of driving per vehicle.
        #[arg(long, default_value_t = 1200)]
        seconds: u32,
    },
    /// The history API's local backend on one vehicle-day of a 100 Hz signal.
    BenchApi {
        #[arg(long, default_value = "dbc/ev_powertrain.dbc")]
        dbc: PathBuf,
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Objects the day is split into (24: hourly batches; 1440: the edge's default 60 s).
        #[arg(long, value_delimiter = ',', default_value = "24,1440")]
        objects: Vec<usize>,
        /// Days of the month chart (0 skips it).
        #[arg(long, default_value_t = 31)]
        month_days: i64,
        /// The release `api` binary: its first chart after a cold start is
        /// timed too, against a stack of its own (moto) with S3's and
        /// DynamoDB's latency in front.
        #[arg(long)]
        api_bin: Option<PathBuf>,
        /// Cold starts of the `api` binary.
        #[arg(long, default_value_t = 5)]
        cold_runs: usize,
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Fleet-wide reads (counts, listings, the alert feed) at each fleet size, on the memory adapters and on moto.
    BenchFleet {
        /// Fleets seeded into the memory adapters.
        #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
        memory: Vec<usize>,
        /// The fleet seeded into moto (0 skips moto), through the adapters'
        /// own writes.
        #[arg(long, default_value_t = 10_000)]
        moto: usize,
        #[arg(long, default_value_t = 100)]
        runs: usize,
        /// The modelled delay of one DynamoDB request, in ms.
        #[arg(long, default_value_t = 8)]
        request_ms: u64,
    },
    /// Each Lambda's init time (process start to its first request for an
    /// event) and binary size, started with the stack's environment
    /// (`make bench-lambdas`).
    InitTime {
        #[command(flatten)]
        stack: StackArgs,
        /// Where the Lambda binaries are (a release build: target/release).
        #[arg(long)]
        bin_dir: PathBuf,
        #[arg(long, default_value_t = 11)]
        runs: usize,
    },
    /// Latency through the stack, p50 and p95: MQTT publish → state in
    /// DynamoDB, and raw object upload → decoded object readable.
    Latency {
        #[command(flatten)]
        stack: StackArgs,
        #[arg(long, default_value_t = 50)]
        samples: usize,
        /// Frames per raw object.
        #[arg(long, default_value_t = 10_000)]
        frames: usize,
    },
}

async fn start(args: &StackArgs) -> Result<Stack> {
    let template = match &args.template {
        Some(t) => t.clone(),
        None => find_template(&std::env::current_dir()?).context("no template.yaml here or above; pass --template")?,
    };
    let stack = Stack::start(StackOptions {
        template,
        moto_endpoint: args.moto.clone(),
        mqtt_port: args.mqtt_port,
        api_port: args.api_port,
        visibility_timeout_s: None,
        functions_endpoint: None,
        batching_windows: false,
    })
    .await?;
    // `make watch` runs `cargo lambda watch` with these, so invoked functions
    // reach this stack: every function's variables (they agree where they meet).
    let mut env = std::collections::BTreeMap::new();
    for f in &stack.template.functions {
        env.extend(stack.environment(&f.logical_id).unwrap_or_default());
    }
    let lines: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    if let Some(dir) = args.env_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.env_file, lines)?;
    Ok(stack)
}

fn banner(stack: &Stack) {
    println!("moto (S3, SQS, DynamoDB, SNS, IoT data)  {}", stack.endpoint);
    println!("MQTT broker                              mqtt://{}", stack.mqtt);
    println!("API                                      http://{}", stack.api);
    println!("console                                  http://{}/", stack.api);
    println!("live stream (docs/live-protocol.md)      ws://{}/live", stack.api);
    println!("data bucket                              {}", stack.bucket);
    println!(
        "device keys (POST /ingest)               device-keys --endpoint {} --table DeviceKeysTable create --device veh-001",
        stack.endpoint
    );
}

async fn until_ctrl_c() -> Result<()> {
    println!("\nUp until Ctrl-C.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    // Warnings only unless RUST_LOG says otherwise: stdout is the summary, and
    // the functions' per-invocation logs would bury it.
    // rumqttd reports our own readiness probes (connect, close) as errors.
    canopy::runtime::logging::init_text_or("warn,canopy_local=info,rumqttd=off");
    match Cli::parse().command {
        Command::Broker { listen } => canopy_local::broker::run(listen)?,
        Command::Redrive { moto, queue, template } => {
            let template = match template {
                Some(t) => t,
                None => find_template(&std::env::current_dir()?)
                    .context("no template.yaml here or above; pass --template")?,
            };
            let template = canopy_local::template::Template::load(&template)?;
            let sdk = canopy_local::services::sdk_config(&moto).await;
            let moved = canopy_local::stack::redrive_queue(&template, &sdk, &queue).await?;
            println!("{moved} messages moved from {queue} back to its source queue");
        }
        Command::Up { stack: args, fleet } => {
            let stack = start(&args).await?;
            if fleet > 0 {
                tokio::select! {
                    took = canopy_local::fleet::seed_stack(&stack, fleet) => {
                        println!("Seeded       {fleet} vehicles (fleet-000000 …) in {:.0} s", took?.as_secs_f64());
                    }
                    // Ctrl-C while seeding stops the stack, as it does once up.
                    stopped = tokio::signal::ctrl_c() => return Ok(stopped?),
                }
            }
            banner(&stack);
            println!("`make watch` environment: {}", args.env_file.display());
            until_ctrl_c().await?;
        }
        Command::Demo {
            stack: args,
            vehicles,
            minutes,
            once,
        } => demo(&args, vehicles, minutes, once).await?,
        Command::Cost {
            template,
            prices,
            dbc,
            vehicles,
            seconds,
        } => {
            let absolute = |p: PathBuf| std::fs::canonicalize(&p).with_context(|| format!("{}", p.display()));
            let options = canopy_local::cost::CostOptions {
                template: absolute(template)?,
                prices: absolute(prices)?,
                edge: demo::edge_binary()?,
                dbc: absolute(dbc)?,
                vehicles,
                seconds,
            };
            print!("{}", canopy_local::cost::run(&options).await?);
        }
        Command::BenchApi {
            dbc,
            runs,
            objects,
            month_days,
            api_bin,
            cold_runs,
            stack: args,
        } => {
            let stack = match &api_bin {
                Some(_) => Some(start(&args).await?),
                None => None,
            };
            let cold = match (&stack, &api_bin) {
                (Some(stack), Some(binary)) => Some(canopy_local::bench::api_cold::ColdStart {
                    stack,
                    binary,
                    runs: cold_runs,
                }),
                _ => None,
            };
            canopy_local::bench::api::run(&dbc, runs, &objects, month_days, cold.as_ref()).await?
        }
        Command::BenchFleet {
            memory,
            moto,
            runs,
            request_ms,
        } => {
            let options = canopy_local::bench::fleet::FleetBenchOptions {
                memory,
                moto,
                runs,
                request_ms,
            };
            canopy_local::bench::fleet::run(&options, &mut std::io::stdout()).await?;
        }
        Command::InitTime {
            stack: args,
            bin_dir,
            runs,
        } => {
            let stack = start(&args).await?;
            let times = canopy_local::bench::init_time::measure(&stack, &bin_dir, runs).await?;
            print!("{}", canopy_local::bench::init_time::report(&times));
        }
        Command::Latency {
            stack: args,
            samples,
            frames,
        } => latency(&args, samples, frames).await?,
    }
    Ok(())
}

/// `canopy-local demo`: a simulated fleet and stations through a stack of
/// their own, then the summary.
async fn demo(args: &StackArgs, vehicles: usize, minutes: u32, once: bool) -> Result<()> {
    let stack = start(args).await?;
    banner(&stack);
    let work = tempfile::tempdir()?;
    let now_s = chrono::Utc::now().timestamp();
    let options = FleetOptions {
        vehicles,
        seconds: minutes * 60,
        overheating: Some(1),
        // The drive ended a minute ago.
        start_us: (now_s - i64::from(minutes) * 60 - 60) * 1_000_000,
        edge: demo::edge_binary()?,
        dbc: stack.template_dir().join("dbc/ev_powertrain.dbc"),
        work: work.path().to_path_buf(),
        replay_dir: None,
        replay_speed: 0.0,
        via: None,
        settings: Default::default(),
    };
    println!("\nSimulating {vehicles} vehicles for {minutes} minutes each (veh-001 overheats)...");
    println!("and 3 battery-swap stations for 40 s, their model 900 times faster (st-003 runs out)...");
    let stations_work = work.path().join("stations");
    let (counters, stations) = tokio::join!(
        demo::run_fleet(&stack, &options),
        demo::run_stations(&stack, &options.edge, &stations_work, &demo::DEMO_STATIONS, 40, 900.0),
    );
    let (counters, stations) = (counters?, stations?);
    println!("Waiting for the decoder and the queues to settle...");
    demo::wait_idle(&stack, Duration::from_secs(300)).await?;
    demo::index_telemetry(&stack).await?;
    print!("{}", demo::summary(&stack, &counters).await?);
    print!("{}", demo::station_summary(&stack, &stations).await?);
    if !once {
        until_ctrl_c().await?;
    }
    Ok(())
}

/// `canopy-local latency`: p50/p95 of what users wait for, against targets.
async fn latency(args: &StackArgs, samples: usize, frames: usize) -> Result<()> {
    let stack = start(args).await?;
    let report = |name: &str, target_ms: f64, mut ms: Vec<f64>| {
        let (p50, p95, max) = canopy_local::bench::latency::percentiles(&mut ms);
        let verdict = if p95 < target_ms { "met" } else { "MISSED" };
        println!(
            "{name:<42} n={:<4} p50 {p50:>7.1} ms  p95 {p95:>7.1} ms  max {max:>7.1} ms  (target p95 < {target_ms} ms: {verdict})",
            ms.len()
        );
    };
    let telemetry = canopy_local::bench::latency::telemetry(&stack, samples).await?;
    report("MQTT publish -> state in DynamoDB", 1000.0, telemetry);
    let live = canopy_local::bench::latency::live(&stack, samples.max(200)).await?;
    report("MQTT publish -> live stream client", 250.0, live);
    let decode = canopy_local::bench::latency::decode(&stack, samples, frames).await?;
    report(
        &format!("raw upload ({frames} frames) -> decoded object"),
        2000.0,
        decode,
    );
    Ok(())
}
