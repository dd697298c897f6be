fn main() {
    let code = devcluster::cli::run(
        std::env::args_os(),
        devcluster::adapters::world::World::from_process(),
    );
    std::process::exit(code);
}
