//! The {{project-name}} binary: `{{project-name}}` runs the operator, `{{project-name}} crdgen`
//! prints its CRD, `{{project-name}} rbacgen` its RBAC rules{% if webhooks %}, `{{project-name}} webhookgen` its webhooks{% endif %}. `--help` lists the flags.

use clap::Parser;
use {{crate_name}}::operator::{self, Args, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Some(Command::Crdgen) => {
            print!("{}", {{crate_name}}::crd::crd_yaml()?);
            Ok(())
        }
        Some(Command::Rbacgen) => {
            print!("{}", operator::rbac_yaml()?);
            Ok(())
        }
{%- if webhooks %}
        Some(Command::Webhookgen) => {
            print!("{}", {{crate_name}}::webhook::webhook_yaml()?);
            Ok(())
        }
{%- endif %}
        None => {
            krust::operator::init_logging(args.operator.log_format);
            operator::run(args).await
        }
    }
}
