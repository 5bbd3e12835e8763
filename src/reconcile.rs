//! `checkout reconcile`: a manager's run of a day's reconciliation on a running coordinator, every difference written as CSV.

use std::io::Write;

use anyhow::Context;
use checkout_coordinator::providers::alipay::fen_to_yuan;
use checkout_lanes::{Bearer, ClientTls, coordinator_endpoint};
use checkout_proto::v1::{self as pb, store_service_client::StoreServiceClient};

use crate::cli::ReconcileArgs;

fn provider_of(name: &str) -> anyhow::Result<pb::Provider> {
    match name.to_ascii_lowercase().as_str() {
        "wechat" | "wechatpay" | "wechat_pay" => Ok(pb::Provider::WechatPay),
        "alipay" => Ok(pb::Provider::Alipay),
        "unionpay" => Ok(pb::Provider::Unionpay),
        other => anyhow::bail!("--provider {other:?}: wechat, alipay or unionpay"),
    }
}

/// `12.34`, as the bills write amounts; empty when there is none.
fn money(money: Option<&pb::Money>) -> String {
    money.map(|m| fen_to_yuan(m.minor_units)).unwrap_or_default()
}

pub fn run(args: ReconcileArgs) -> anyhow::Result<()> {
    let providers = if args.provider.is_empty() {
        vec![pb::Provider::WechatPay, pb::Provider::Alipay]
    } else {
        args.provider.iter().map(|p| provider_of(p)).collect::<anyhow::Result<_>>()?
    };
    let token = std::fs::read_to_string(&args.token_file)
        .with_context(|| format!("cannot read {}", args.token_file.display()))?;
    let tls = match &args.ca {
        Some(ca) => Some(ClientTls {
            ca_pem: Some(std::fs::read_to_string(ca).with_context(|| format!("cannot read {}", ca.display()))?),
            ..ClientTls::default()
        }),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let channel = coordinator_endpoint(&args.coordinator, tls.as_ref())?.connect().await.context("connecting")?;
        let mut client = StoreServiceClient::with_interceptor(channel, Bearer::new(&token)?);
        let mut out: Box<dyn Write> = if args.csv.as_os_str() == "-" {
            Box::new(std::io::stdout().lock())
        } else {
            Box::new(std::io::BufWriter::new(
                std::fs::File::create(&args.csv).with_context(|| format!("cannot write {}", args.csv.display()))?,
            ))
        };
        let mut csv = csv::Writer::from_writer(&mut out);
        csv.write_record([
            "date",
            "provider",
            "reconciliation",
            "number",
            "kind",
            "line",
            "out_trade_no",
            "out_refund_no",
            "ledger_amount",
            "bill_amount",
            "ledger_state",
            "bill_state",
            "duplicated_in_bill",
        ])?;
        for provider in providers {
            let request =
                pb::ReconcileRequest { date: args.date.clone(), provider: provider.into(), request_id: String::new() };
            let run = client
                .reconcile(request)
                .await
                .map_err(|status| anyhow::anyhow!("{}: {}", provider.as_str_name(), status.message()))?
                .into_inner();
            let (ledger, bill) = (run.ledger.clone().unwrap_or_default(), run.bill.clone().unwrap_or_default());
            eprintln!(
                "{} {}: {} differences, {} lines matched; ledger net {}, bill net {} (fees {})",
                provider.as_str_name(),
                run.date,
                run.differences,
                run.matched,
                money(ledger.net.as_ref()),
                money(bill.net.as_ref()),
                money(bill.fees.as_ref()),
            );
            let mut page_token = String::new();
            loop {
                let request = pb::GetReconciliationRequest { id: run.id, page_size: 1000, page_token };
                let page = client.get_reconciliation(request).await?.into_inner();
                for d in &page.differences {
                    csv.write_record([
                        run.date.clone(),
                        provider.as_str_name().to_owned(),
                        run.id.to_string(),
                        d.number.to_string(),
                        d.kind().as_str_name().to_owned(),
                        d.line_kind().as_str_name().to_owned(),
                        d.out_trade_no.clone(),
                        d.out_refund_no.clone(),
                        money(d.ledger_amount.as_ref()),
                        money(d.bill_amount.as_ref()),
                        d.ledger_state().as_str_name().to_owned(),
                        d.bill_state().as_str_name().to_owned(),
                        d.duplicated_in_bill.to_string(),
                    ])?;
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
        }
        csv.flush()?;
        Ok(())
    })
}
